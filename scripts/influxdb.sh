#!/usr/bin/env bash
# Installs and runs a local InfluxDB 1.8.10 for metricgate's tests, benchmarks
# and quickstart. InfluxDB 1.8 is pure Go: it builds from the Go module proxy
# into a cache directory once, then starts in about a second.
#
#   scripts/influxdb.sh install          build influxd into the cache if absent
#   scripts/influxdb.sh start DIR [DB]   start it on a free loopback port with
#                                        its data in DIR, create database DB
#                                        (default metricgate) and print
#                                        INFLUX_URL=http://127.0.0.1:PORT
#   scripts/influxdb.sh stop DIR         stop the server started in DIR
#   scripts/influxdb.sh bin              install, then print influxd's path
#   scripts/influxdb.sh port             print a free loopback port (for the
#                                        other servers a script starts)
set -euo pipefail

version=v1.8.10
cache=${METRICGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metricgate}
bin=$cache/influxdb-$version/bin/influxd

install() {
  if [ -x "$bin" ]; then return; fi
  echo "building influxd $version into $cache (about a minute, once)" >&2
  mkdir -p "$(dirname "$bin")"
  # Outside any module, so the project's go.mod is not touched.
  (cd / && GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod go install "github.com/influxdata/influxdb/cmd/influxd@$version") >&2
}

# free_port prints a loopback port nothing listens on, below the kernel's
# range for ephemeral ports: a port in that range can be the local end of
# some connection, which refuses a connect like a free port does and yet
# cannot be bound.
free_port() {
  local p low=32768
  [ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$low" -gt 11024 ] || low=32768
  for _ in $(seq 1 100); do
    p=$((10000 + RANDOM % (low - 11000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}

# start DIR DB: start influxd; a port taken between choosing and binding it
# makes it try again with others.
start() {
  local attempt
  for attempt in 1 2 3; do
    if start_once "$@"; then return; fi
    grep -q "address already in use" "$1/influxd.log" 2>/dev/null || break
    echo "influxd's port was taken; trying others" >&2
  done
  return 1
}

start_once() {
  local dir=$1 db=${2:-metricgate}
  install
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local port rpc
  port=$(free_port)
  rpc=$(free_port)
  cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
CONF
  "$bin" run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
  echo $! >"$dir/influxd.pid"
  local url=http://127.0.0.1:$port
  for _ in $(seq 1 150); do
    if curl -fsS --max-time 2 "$url/ping" >/dev/null 2>&1; then
      curl -fsS -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE \"$db\"" >/dev/null
      echo "INFLUX_URL=$url"
      return
    fi
    if ! kill -0 "$(cat "$dir/influxd.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "influxd did not start; its log:" >&2
  cat "$dir/influxd.log" >&2
  return 1
}

stop() {
  local dir=$1
  [ -f "$dir/influxd.pid" ] || return 0
  local pid
  pid=$(cat "$dir/influxd.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/influxd.pid"
}

case "${1:-}" in
  install) install ;;
  bin) install; echo "$bin" ;;
  start) start "${2:?usage: $0 start DIR [DB]}" "${3:-}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  port) free_port ;;
  *) echo "usage: $0 install | bin | start DIR [DB] | stop DIR | port" >&2; exit 2 ;;
esac
