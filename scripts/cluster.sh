#!/usr/bin/env bash
# Runs a cluster of metricgate on this machine, all on loopback: PostgreSQL
# (the shared key store), Redis (the shared rate limits), InfluxDB 1.8.10,
# N gateways (default 3) and HAProxy in front of them, round robin, checking
# each gateway's /readyz and telling it the client's address with the PROXY
# protocol v2. Each server is started by scripts/testenv.sh with the
# configuration the tests use; everything lives in .run/cluster and is
# stopped by Ctrl-C. It generates a key for 127.0.0.1 and prints a curl
# command that submits a point through the load balancer.
#
#   scripts/cluster.sh          # 3 gateways
#   scripts/cluster.sh 5        # 5 gateways
#   scripts/run.sh --replicas 5 # the same
set -euo pipefail
cd "$(dirname "$0")/.."

replicas=${1:-3}
if ! [[ $replicas =~ ^[1-9][0-9]?$ ]]; then
  echo "usage: scripts/cluster.sh [REPLICAS]   (1 to 99 gateways)" >&2
  exit 2
fi
scripts/deps.sh postgresql redis-server haproxy
mkdir -p bin
go build -o bin/apiserver ./cmd/apiserver
go build -o bin/keyctl ./cmd/keyctl

dir=$PWD/.run/cluster
pids=()
stop() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/testenv.sh haproxy stop "$dir/haproxy" || true
  scripts/testenv.sh redis stop "$dir/redis" || true
  scripts/testenv.sh postgresql stop "$dir/postgresql" || true
  scripts/testenv.sh influxdb stop "$dir/influxdb" || true
}
trap stop EXIT INT TERM
stop
trap stop EXIT INT TERM
mkdir -p "$dir"

eval "$(scripts/testenv.sh postgresql start "$dir/postgresql" metricgate)"
eval "$(scripts/testenv.sh redis start "$dir/redis")"
eval "$(scripts/testenv.sh influxdb start "$dir/influxdb" metricgate)"

# HAProxy connects to the gateways from an address of its own, the one
# they trust: a client on 127.0.0.1 is not taken for the proxy.
proxy=127.0.0.9
addrs=()
admins=()
for i in $(seq 1 "$replicas"); do
  addr=127.0.0.1:$(scripts/testenv.sh port)
  admin=127.0.0.1:$(scripts/testenv.sh port)
  mkdir -p "$dir/gw-$i"
  # GODEBUG: the Go runtime's monitor, as deploy/metricgate@.service sets it.
  GODEBUG=${GODEBUG:-schedtrace=2147483647} bin/apiserver --listen "$addr" --admin-listen "$admin" --node-name "gw-$i" \
    --db "$POSTGRES_URL" --limits "redis://$REDIS_ADDR/0" \
    --proxy-protocol --trusted-proxy "$proxy" \
    --influx-url "$INFLUX_URL" --influx-bucket metricgate \
    --spool-dir "$dir/gw-$i/spool" --log-format text >"$dir/gw-$i/apiserver.log" 2>&1 &
  pids+=($!)
  addrs+=("$addr")
  admins+=("$admin")
done
for admin in "${admins[@]}"; do
  for _ in $(seq 1 200); do
    curl -fs "http://$admin/readyz" >/dev/null 2>&1 && break
    sleep 0.05
  done
  curl -fs "http://$admin/readyz" >/dev/null || { echo "a gateway did not start; see $dir/gw-*/apiserver.log" >&2; exit 1; }
done
eval "$(scripts/testenv.sh haproxy start "$dir/haproxy" proxy-v2 "$proxy" "${addrs[@]}")"

key=$(bin/keyctl --db "$POSTGRES_URL" generate --hostname 127.0.0.1 --rate 2000 --description "cluster quickstart" --quiet)
cat <<MSG

metricgate is running as $replicas gateways behind HAProxy at $HAPROXY_URL
  key store:   $POSTGRES_URL (bin/keyctl --db '$POSTGRES_URL' list)
  rate limits: redis://$REDIS_ADDR/0, shared by every gateway
  InfluxDB:    $INFLUX_URL (database metricgate)
  gateways:    ${addrs[*]} (logs in $dir/gw-*/apiserver.log)
  admin:       ${admins[*]} (/readyz shows each gateway's state)

A key for 127.0.0.1, limited to 2,000 field values a second across the
cluster, was generated; submit a point through the load balancer with:

  curl -X POST $HAPROXY_URL/api/submit -H "Content-Type: application/json" -H "X-API-Key: $key" -d '{"field": "os_updates", "value": 5}'

and see it in InfluxDB with:

  curl -sG $INFLUX_URL/query --data-urlencode "db=metricgate" --data-urlencode "q=SELECT * FROM custom_metrics"

Ctrl-C stops everything.
MSG
wait "${pids[@]}"
