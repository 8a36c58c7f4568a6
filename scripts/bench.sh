#!/usr/bin/env bash
# Measures metricgate's throughput against a real InfluxDB, with the load
# driven by wrk from a separate process, for a bounded time, in several
# interleaved rounds, and prints a table of ratios measured in the same run.
#
#   scripts/bench.sh              # ROUNDS=3 DURATION=8s CONNS=32
#   ROUNDS=5 DURATION=10s scripts/bench.sh
#   SECTIONS="1 6" scripts/bench.sh     # only the sections named
#   BENCH_ONLY=checks scripts/bench.sh   # section 5 alone (SECTIONS=5)
#   BENCH_ONLY=peers scripts/bench.sh    # section 7 alone (SECTIONS=7)
#   BENCH_ONLY=vm scripts/bench.sh       # section 8 alone (SECTIONS=8)
#
# 1. /api/submit, one point per request, keep-alive, CONNS connections,
#    beside a bare net/http handler that reads the body and answers 204:
#    requests/s and p50/p99 latency, with --fsync always and interval, and
#    with --fsync interval on a PostgreSQL key store (a private server that
#    scripts/testenv.sh starts) beside the SQLite one: interval is bound by
#    CPU, so it shows what the key store costs, where always shows the
#    disk. The bare handler is
#    also measured answering as /api/submit does (200, JSON, X-Request-Id):
#    what the answer alone costs.
# 2. Batches of 5000 points: points/s accepted and points/s reaching
#    InfluxDB, beside InfluxDB's own write rate for the same batches, with
#    the default pacing and without it (--pace-batches 0, which also leaves
#    a backlog to drain), and the CPU InfluxDB used meanwhile; then again
#    with InfluxDB on a CPU of its own.
# 3. Key look-up cost with 10, 10,000 and 1,000,000 keys on SQLite and on
#    PostgreSQL (Go benchmark), what a replica does before it serves with
#    1,000,000 keys, and the submit handler's own cost per request.
# 4. Peak RSS of the apiserver: through all of the above, and with batches
#    on CONNS connections at once.
# 5. What the isolation checks cost: one gateway with them on (the
#    defaults: point budgets, time window, series per key, schema guard,
#    quarantine, and a key with a bucket of its own, which its spool
#    records name and the forwarder writes apart) and one with them off
#    and the key in the gateway's bucket, one point per request and
#    batches.
# 6. An apiserver on a PostgreSQL key store holding 1,000,000 keys: the
#    time from its start to its first accepted point.
# 7. The peers, InfluxDB as the backend: the gateway (--fsync interval and
#    always) beside Telegraf 1.37's influxdb_v2_listener, InfluxDB itself
#    and a bare net/http handler, on 5000-line Telegraf-shaped batches to
#    /api/v2/write and on one point per request: points/s accepted, points/s
#    that reached InfluxDB during the load (SHOW STATS pointsWrittenOK),
#    CPU-us per point of the receiving process (/proc/PID/stat), and the
#    requests that shared each fdatasync in --fsync always.
# 8. VictoriaMetrics v1.151.0 as the backend: the gateway beside vmagent
#    (its disk queue) and VictoriaMetrics directly, on the same batches.
# The peers are built by scripts/peers.sh into the project's cache.
# 9. Bulk provisioning: keyctl generate --hostname-file with BULK_HOSTS
#    (10,000) hosts in one transaction, then keyctl apply of the same keys
#    exported (BULK_HOSTS creates into an empty store, then a second apply
#    that finds them unchanged), on a new SQLite file and a new PostgreSQL
#    database; the seconds each took. SECTIONS=9 runs it alone, without
#    InfluxDB or gateways.
# 10. Rate limits shared through Redis (--limits, a private redis-server
#    that scripts/testenv.sh starts) beside this replica's own, one point
#    per request on a key whose limit (--default-rate 1000000) every
#    request takes a token from but none reaches: requests/s, and the
#    leases asked of Redis per request.
# Everything listens on loopback and stops by itself. SECTIONS runs only
# the sections named; 4 needs 1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-32}
BATCH_CONNS=${BATCH_CONNS:-4}
DRAIN_WINDOW=${DRAIN_WINDOW:-2}
SECTIONS=${SECTIONS:-1 2 3 4 5 6 7 8 9 10}
BULK_HOSTS=${BULK_HOSTS:-10000}
# section N: whether SECTIONS names section N.
section() { [[ " $SECTIONS " == *" $1 "* ]]; }

scripts/deps.sh wrk

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/influxdb.sh stop "$work/influx" || true
  scripts/testenv.sh postgresql stop "$work/pg" || true
  scripts/testenv.sh postgresql stop "$work/pg-bulk" || true
  scripts/testenv.sh redis stop "$work/redis" || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/apiserver" ./cmd/apiserver
go build -o "$work/keyctl" ./cmd/keyctl
go build -o "$work/bare" ./scripts/bench/bare

# bulk_section: section 9, on a PostgreSQL server of its own.
bulk_section() {
  local hosts=$work/hosts.txt db empty name g a u t0 t1 pg_url psql
  echo "== 9. bulk provisioning: $BULK_HOSTS hosts, each run one transaction (seconds)"
  awk -v n="$BULK_HOSTS" 'BEGIN {for (i = 1; i <= n; i++) printf "10.%d.%d.%d host-%d\n", int(i/65536), int(i/256)%256, i%256, i}' >"$hosts"
  pg_url=$(eval "$(scripts/testenv.sh postgresql start "$work/pg-bulk" bulk)"; echo "$POSTGRES_URL")
  psql=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1)
  "$psql" -X -q -v ON_ERROR_STOP=1 -d "$pg_url" -c 'CREATE DATABASE bulkapply'
  # elapsed T0 T1: seconds between two readings of date +%s.%N.
  elapsed() { awk -v s="$1" -v e="$2" 'BEGIN {printf "%.2f", e-s}'; }
  printf '%-12s %24s %20s %22s\n' store "generate --hostname-file" "apply (all create)" "apply (all unchanged)"
  for db in "$work/bulk.db" "$pg_url"; do
    name=SQLite empty=$work/bulk-apply.db
    if [[ $db == postgres* ]]; then name=PostgreSQL empty=${db/\/bulk\?/\/bulkapply?}; fi
    t0=$(date +%s.%N); "$work/keyctl" --db "$db" generate --hostname-file "$hosts" -o json >"$work/bulk-keys.json"; t1=$(date +%s.%N)
    g=$(elapsed "$t0" "$t1")
    [ "$(grep -c '"key":' "$work/bulk-keys.json")" = "$BULK_HOSTS" ] || echo "warning: generate printed fewer than $BULK_HOSTS keys" >&2
    "$work/keyctl" --db "$db" export >"$work/bulk.yaml"
    t0=$(date +%s.%N); "$work/keyctl" --db "$empty" apply -f "$work/bulk.yaml" --secrets-out "$work/bulk-secrets.json" >/dev/null 2>&1; t1=$(date +%s.%N)
    a=$(elapsed "$t0" "$t1")
    t0=$(date +%s.%N); "$work/keyctl" --db "$empty" apply -f "$work/bulk.yaml" >/dev/null 2>&1; t1=$(date +%s.%N)
    u=$(elapsed "$t0" "$t1")
    printf '%-12s %24s %20s %22s\n' "$name" "$g" "$a" "$u"
  done
  scripts/testenv.sh postgresql stop "$work/pg-bulk" >/dev/null
}
if section 9; then
  bulk_section
  echo
fi
if [ "$SECTIONS" = 9 ]; then exit 0; fi

eval "$(scripts/influxdb.sh start "$work/influx" bench)"
export KEYSTORE_DB=$work/keys.db
key=$("$work/keyctl" generate --hostname 127.0.0.1 --description bench --quiet)
# The PostgreSQL key store: its own key, used by the postgres gateway.
eval "$(scripts/testenv.sh postgresql start "$work/pg" bench)"
pgkey=$("$work/keyctl" --db "$POSTGRES_URL" generate --hostname 127.0.0.1 --description bench --quiet)

free_port() { scripts/influxdb.sh port; }
wait_up() { for _ in $(seq 1 200); do curl -fs "$1" >/dev/null 2>&1 && return; sleep 0.05; done; echo "$1 did not come up" >&2; exit 1; }

bare_port=$(free_port)
"$work/bare" "127.0.0.1:$bare_port" &
bare_pid=$!
pids+=($!)
influx_pid=$(cat "$work/influx/influxd.pid")
# PIN runs wrk and gateways on chosen CPUs (taskset); WRK_THREADS is wrk's -t.
PIN=
WRK_THREADS=2
# start_gateway NAME [FLAGS...]: starts an apiserver with the bench's
# settings and FLAGS, run under $PIN, and sets gw_port and gw_pid;
# admin_of[gw_port] is its admin listener's port.
start_gateway() {
  local name=$1
  shift
  gw_port=$(free_port)
  admin_of[$gw_port]=$(free_port)
  # The gateway as the systemd unit runs it: GODEBUG keeps the Go runtime's
  # monitor from polling every 20 us after each idle spell (README: Running
  # in production). The peers run as they ship.
  GODEBUG=schedtrace=2147483647 $PIN "$work/apiserver" --listen "127.0.0.1:$gw_port" --admin-listen "127.0.0.1:${admin_of[$gw_port]}" --influx-url "$INFLUX_URL" --influx-bucket bench \
    --spool-dir "$work/spool-$name" --auth-fail-burst 0 "$@" >/dev/null 2>"$work/apiserver-$name.log" &
  gw_pid=$!
  pids+=($!)
  wait_up "http://127.0.0.1:$gw_port/readyz"
}
declare -A port debug pid admin_of
for mode in always interval; do
  debug[$mode]=$(free_port)
  start_gateway "$mode" --fsync "$mode" --debug-listen "127.0.0.1:${debug[$mode]}"
  port[$mode]=$gw_port
  pid[$mode]=$gw_pid
done
start_gateway postgres --fsync interval --db "$POSTGRES_URL" --node-name bench
port[postgres]=$gw_port
pid[postgres]=$gw_pid
wait_up "http://127.0.0.1:$bare_port/"

# The spool and forwarder details are on the admin listener's /readyz.
spool_points() { curl -fs "http://127.0.0.1:${admin_of[$1]}/readyz" | sed -n 's/.*"spool":{[^}]*"points":\([0-9]*\).*/\1/p'; }
wait_drained() { for _ in $(seq 1 1200); do [ "$(spool_points "$1")" = "0" ] && return; sleep 0.05; done; }

# run_wrk URL BODY_FILE CONNS [CONTENT_TYPE] -> "rps p50_ms p99_ms non2xx
# requests", run as $PIN wrk -t$WRK_THREADS, with the key $WRK_KEY if
# set, else $key.
run_wrk() {
  local out n
  out=$(BODY_FILE=$2 API_KEY=${WRK_KEY:-$key} CONTENT_TYPE=${4:-application/json} \
    $PIN wrk -t"$WRK_THREADS" -c"$3" -d"$DURATION" --latency -s scripts/bench/post.lua "$1")
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${bad:-0} $n"
}
# cpu_ticks PID: user plus system CPU time of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# cpu_us TICKS N: TICKS of CPU time in microseconds per item, over N items.
cpu_us() { awk -v d="$1" -v n="$2" -v hz="$hz" 'BEGIN {printf "%.2f", (n > 0 ? d/hz*1e6/n : 0)}'; }
# influx_use TICKS0 TICKS1 T0 T1 POINTS: InfluxDB's CPU time between two
# readings of cpu_ticks taken at T0 and T1: the CPUs it kept busy, and
# microseconds per point written. On its own CPU (2b), a busy InfluxDB that
# still writes fewer points than it does directly is being slowed, not
# starved.
influx_use() {
  echo "$(awk -v d="$(($2 - $1))" -v s="$3" -v e="$4" -v hz="$hz" 'BEGIN {printf "%.2f", d/hz/(e-s)}') $(cpu_us $(($2 - $1)) "$5")"
}
# run_wrk_cpu SERVER_PID ARGS...: run_wrk ARGS, and append the CPU time per
# request, in microseconds, of the server and of InfluxDB.
run_wrk_cpu() {
  local pid=$1 s0 i0 out n
  shift
  s0=$(cpu_ticks "$pid"); i0=$(cpu_ticks "$influx_pid")
  out=$(run_wrk "$@")
  n=$(awk '{print $5}' <<<"$out")
  echo "$out $(cpu_us $(($(cpu_ticks "$pid") - s0)) "$n") $(cpu_us $(($(cpu_ticks "$influx_pid") - i0)) "$n")"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo '{"field": "os_updates", "value": 5}' >"$work/one.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
pts = [{"measurement": "batch", "field": "v", "value": i, "tags": {"shard": str(i % 50)}, "timestamp": 1700000000000000000 + i} for i in range(5000)]
json.dump(pts, open(w + "/batch.json", "w"))
with open(w + "/batch.lp", "w") as f:
    for i in range(5000):
        f.write("batch,host=127.0.0.1,shard=%d v=%di %d\n" % (i % 50, i, 1700000000000000000 + i))
PY

# checks_section: the same gateway with the isolation checks on (the
# defaults, and a key with a bucket of its own) and off (the key in the
# gateway's bucket), in interleaved rounds: one point per request and
# 5000-point batches, each without pacing (--pace-batches 0), so what is
# accepted is the gateway's own rate, and --fsync interval, so it is bound
# by CPU, where the checks' cost shows.
checks_section() {
  local r mode res off_flags
  local -A cport cpid cres ckey
  off_flags=(--max-future 0 --max-fields 0 --max-tags 0 --max-series-per-key 0 --schema-guard=false --quarantine-after 0)
  # The gateway with the checks on reads a key store of its own, whose key
  # writes to a bucket of its own.
  curl -fs -XPOST "$INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE bench_own" >/dev/null
  ckey[on]=$("$work/keyctl" --db "$work/keys-own.db" generate --hostname 127.0.0.1 --bucket bench_own --description bench --quiet)
  ckey[off]=$key
  start_gateway checks-on --fsync interval --pace-batches 0 --db "$work/keys-own.db"
  cport[on]=$gw_port cpid[on]=$gw_pid
  start_gateway checks-off --fsync interval --pace-batches 0 "${off_flags[@]}"
  cport[off]=$gw_port cpid[off]=$gw_pid
  echo "== 5. the isolation checks on (defaults, a key with its own bucket) and off (${off_flags[*]}, the gateway's bucket), --fsync interval, --pace-batches 0, $ROUNDS rounds of $DURATION, interleaved"
  for r in $(seq 1 "$ROUNDS"); do
    for mode in on off; do
      export WRK_KEY=${ckey[$mode]}
      res=$(run_wrk "http://127.0.0.1:${cport[$mode]}/api/submit" "$work/one.json" "$CONNS")
      cres[one-$mode]+="$res"$'\n'
      wait_drained "${cport[$mode]}"
      res=$(run_wrk "http://127.0.0.1:${cport[$mode]}/api/submit" "$work/batch.json" "$BATCH_CONNS")
      cres[batch-$mode]+="$(awk '{print $1*5000, $4}' <<<"$res")"$'\n'
      wait_drained "${cport[$mode]}"
    done
    echo "checks round $r done" >&2
  done
  unset WRK_KEY
  printf '%-44s %14s %14s %9s %8s\n' target "checks on" "checks off" "on/off" "non-2xx"
  for t in one batch; do
    local on off bad
    on=$(col_median "${cres[$t-on]}" 1)
    off=$(col_median "${cres[$t-off]}" 1)
    bad=$(awk -v k="$([ "$t" = one ] && echo 4 || echo 2)" 'NF {s+=$k} END {print s+0}' <<<"${cres[$t-on]}${cres[$t-off]}")
    case $t in
      one) name="one point per request, requests/s" ;;
      batch) name="5000-point batches, points/s accepted" ;;
    esac
    printf '%-44s %14.0f %14.0f %9.3f %8s\n' "$name" "$on" "$off" "$(awk -v a="$on" -v b="$off" 'BEGIN {print a/b}')" "$bad"
  done
  echo "per round (on, off):"
  for t in one batch; do
    paste -d' ' <(awk 'NF {print $1}' <<<"${cres[$t-on]}") <(awk 'NF {print $1}' <<<"${cres[$t-off]}") | awk -v t="$t" '{printf "  %s: %.0f %.0f (%.3f)\n", t, $1, $2, $1/$2}'
  done
  kill "${cpid[on]}" "${cpid[off]}"
}
# limits_section: one gateway limiting keys alone and one sharing the
# limits through Redis, in interleaved rounds, one point per request on a
# key that takes a token per request (--default-rate 1000000) and is never
# refused; --fsync interval and --pace-batches 0, so they are bound by CPU,
# where what Redis costs shows.
limits_section() {
  local r mode order leases requests
  local -A lport lpid lres
  eval "$(scripts/testenv.sh redis start "$work/redis")"
  start_gateway limits-local --fsync interval --pace-batches 0 --default-rate 1000000
  lport[local]=$gw_port lpid[local]=$gw_pid
  start_gateway limits-redis --fsync interval --pace-batches 0 --default-rate 1000000 --limits "redis://$REDIS_ADDR/0"
  lport[redis]=$gw_port lpid[redis]=$gw_pid
  echo "== 10. rate limits of this replica alone and shared through Redis (--limits), one point per request, $CONNS connections, --fsync interval, $ROUNDS rounds of $DURATION, interleaved"
  for r in $(seq 1 "$ROUNDS"); do
    # Each goes first every other round: on a shared machine the load
    # beside the bench drifts.
    order="local redis"
    [ $((r % 2)) = 0 ] && order="redis local"
    for mode in $order; do
      lres[$mode]+="$(run_wrk_cpu "${lpid[$mode]}" "http://127.0.0.1:${lport[$mode]}/api/submit" "$work/one.json" "$CONNS")"$'\n'
      wait_drained "${lport[$mode]}"
    done
    echo "limits round $r done" >&2
  done
  printf '%-34s %12s %9s %9s %8s %11s\n' target "requests/s" "p50 ms" "p99 ms" "non-2xx" "server us"
  for mode in local redis; do
    printf '%-34s %12.0f %9s %9s %8s %11.1f\n' "limits $mode" "$(col_median "${lres[$mode]}" 1)" "$(col_median "${lres[$mode]}" 2)" \
      "$(col_median "${lres[$mode]}" 3)" "$(awk 'NF {s+=$4} END {print s+0}' <<<"${lres[$mode]}")" "$(col_median "${lres[$mode]}" 6)"
  done
  echo "per round (local, redis):"
  paste -d' ' <(awk 'NF {print $1}' <<<"${lres[local]}") <(awk 'NF {print $1}' <<<"${lres[redis]}") | awk '{printf "  %.0f %.0f (%.3f)\n", $1, $2, $2/$1}'
  leases=$(curl -fs "http://127.0.0.1:${admin_of[${lport[redis]}]}/metrics" | awk '/^metricgate_limits_leases_total/ {print $2}')
  requests=$(awk 'NF {s+=$5} END {print s+0}' <<<"${lres[redis]}")
  echo "Redis limits vs local limits, requests/s: $(awk -v a="$(col_median "${lres[redis]}" 1)" -v b="$(col_median "${lres[local]}" 1)" 'BEGIN {printf "%.3f", a/b}'); leases asked of Redis: $leases for $requests requests ($(awk -v l="$leases" -v n="$requests" 'BEGIN {printf "%.5f", l/n}') a request)"
  kill "${lpid[local]}" "${lpid[redis]}"
}
# col_median ROWS K: the median of field K over the rounds' rows.
col_median() { awk -v k="$2" 'NF {print $k}' <<<"$1" | median; }

# The peers: Telegraf 1.37's influxdb_v2_listener, VictoriaMetrics and
# vmagent, built into the project's cache by scripts/peers.sh.
influx_written() { # points InfluxDB has taken over HTTP so far (SHOW STATS)
  curl -s "$INFLUX_URL/query" --data-urlencode "q=SHOW STATS FOR 'httpd'" | python3 -c '
import json,sys; d=json.load(sys.stdin); s=d["results"][0]["series"][0]; print(dict(zip(s["columns"], s["values"][0])).get("pointsWrittenOK", 0))'
}
# start_telegraf: a fresh Telegraf, its listener taking tokens "bench-token"
# and its output writing to InfluxDB (database bench), as the peer
# benchmarks run it; sets tg_port and tg_pid. Each measurement gets a fresh
# one, so no backlog left in its memory reaches InfluxDB during the next.
start_telegraf() {
  tg_port=$(free_port)
  cat >"$work/telegraf.conf" <<CONF
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 2000000
  omit_hostname = true
[[inputs.influxdb_v2_listener]]
  service_address = "127.0.0.1:$tg_port"
  token = "bench-token"
[[outputs.influxdb_v2]]
  urls = ["$INFLUX_URL"]
  organization = "x"
  bucket = "bench"
CONF
  $PIN "$telegraf" --config "$work/telegraf.conf" >"$work/telegraf.log" 2>&1 &
  tg_pid=$!
  pids+=($!)
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$tg_port/ready" && return; sleep 0.05; done
  echo "telegraf did not come up" >&2; tail -5 "$work/telegraf.log" >&2; exit 1
}
stop_pid() { kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# wrk_lua URL SCRIPT TOKEN PATH [CONNS] -> "requests/s requests non2xx", a
# run of scripts/bench/SCRIPT (lpbatch.lua: 5000-line batches shaped like a
# Telegraf agent's flush; lp.lua, submit.lua: one point per request).
wrk_lua() {
  local out
  out=$(KEY=$3 WRK_PATH=$4 LINES=5000 $PIN wrk -t"$WRK_THREADS" -c"${5:-$CONNS}" -d"$DURATION" -s "scripts/bench/$2" "$1" 2>&1)
  echo "$(awk '/^Requests\/sec/ {print $2}' <<<"$out") $(awk '/requests in/ {print $1}' <<<"$out") $(awk '/Non-2xx/ {print $5}' <<<"$out" | grep . || echo 0)"
}
# measure PID WRITTEN_FN URL SCRIPT TOKEN PATH CONNS POINTS_PER_REQUEST ->
# "accepted/s cpu_us_per_point written/s non2xx": one wrk run; the receiving
# process's CPU from /proc/PID/stat, and what WRITTEN_FN counts (points
# the backend stored) over the run.
measure() {
  local pid=$1 written=$2 c0 c1 w0 w1 t0 t1 res
  shift 2
  c0=$(cpu_ticks "$pid"); w0=$($written); t0=$(date +%s.%N)
  res=$(wrk_lua "$1" "$2" "$3" "$4" "$5")
  c1=$(cpu_ticks "$pid"); w1=$($written); t1=$(date +%s.%N)
  awk -v rps="${res%% *}" -v n="$(awk '{print $2}' <<<"$res")" -v per="$6" -v d="$((c1 - c0))" -v hz="$hz" \
    -v w="$((w1 - w0))" -v s="$t0" -v e="$t1" -v bad="${res##* }" \
    'BEGIN {printf "%.0f %.2f %.0f %d\n", rps*per, (n > 0 ? d/hz*1e6/(n*per) : 0), w/(e-s), bad}'
}
# commit_stats PORT: "groups appends" the gateway's spool has committed
# (its admin /readyz); group_rate BEFORE AFTER T0: "groups/s
# appends/group" between two readings.
commit_stats() {
  curl -fs "http://127.0.0.1:${admin_of[$1]}/readyz" | python3 -c '
import json,sys; s=json.load(sys.stdin)["spool"]; print(s["commit_groups"], s["commit_appends"])'
}
group_rate() {
  awk -v a="$1" -v b="$2" -v s="$3" -v e="$(date +%s.%N)" 'BEGIN {split(a, x, " "); split(b, y, " "); g=y[1]-x[1];
    printf "%.0f %.1f\n", g/(e-s), (g > 0 ? (y[2]-x[2])/g : 0)}'
}
# ratio A B: A/B with two decimals, "-" when B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "-"}'; }
bad_total() { awk 'NF {s+=$4} END {print s+0}' <<<"$1"; }

# peers_section: the gateway beside Telegraf's influxdb_v2_listener, a bare
# net/http handler and InfluxDB itself, in interleaved rounds: 5000-line
# batches to /api/v2/write (points/s accepted, points/s that reached
# InfluxDB during the load, CPU-us per point of the receiving process), and
# one point per request (requests/s, CPU-us per request).
peers_section() {
  local r t res name g0 t0
  local -A pr pport ppid
  telegraf=$(scripts/peers.sh telegraf)
  start_gateway peer-interval --fsync interval
  pport[interval]=$gw_port ppid[interval]=$gw_pid
  start_gateway peer-always --fsync always
  pport[always]=$gw_port ppid[always]=$gw_pid
  local v2="/api/v2/write?bucket=bench&org=x&precision=ns"
  echo "== 7. peers, InfluxDB as the backend: 5000-line batches on $BATCH_CONNS connections, one point per request on $CONNS; $ROUNDS rounds of $DURATION, interleaved"
  for r in $(seq 1 "$ROUNDS"); do
    for t in interval always; do
      pr[batch-$t]+="$(measure "${ppid[$t]}" influx_written "http://127.0.0.1:${pport[$t]}" lpbatch.lua "$key" "$v2" "$BATCH_CONNS" 5000)"$'\n'
      wait_drained "${pport[$t]}"
    done
    start_telegraf
    pr[batch-telegraf]+="$(measure "$tg_pid" influx_written "http://127.0.0.1:$tg_port" lpbatch.lua bench-token "$v2" "$BATCH_CONNS" 5000)"$'\n'
    stop_pid "$tg_pid"
    pr[batch-influx]+="$(measure "$influx_pid" influx_written "$INFLUX_URL" lpbatch.lua x "$v2" "$BATCH_CONNS" 5000)"$'\n'
    pr[one-bare]+="$(measure "$bare_pid" true "http://127.0.0.1:$bare_port" submit.lua x / "$CONNS" 1)"$'\n'
    for t in interval always; do
      g0=$(commit_stats "${pport[$t]}") t0=$(date +%s.%N)
      pr[one-json-$t]+="$(measure "${ppid[$t]}" true "http://127.0.0.1:${pport[$t]}" submit.lua "$key" /api/submit "$CONNS" 1)"$'\n'
      [ "$t" = always ] && pr[groups]+="$(group_rate "$g0" "$(commit_stats "${pport[$t]}")" "$t0")"$'\n'
      wait_drained "${pport[$t]}"
      g0=$(commit_stats "${pport[$t]}") t0=$(date +%s.%N)
      pr[one-lp-$t]+="$(measure "${ppid[$t]}" true "http://127.0.0.1:${pport[$t]}" lp.lua "$key" "$v2" "$CONNS" 1)"$'\n'
      [ "$t" = always ] && pr[groups]+="$(group_rate "$g0" "$(commit_stats "${pport[$t]}")" "$t0")"$'\n'
      wait_drained "${pport[$t]}"
    done
    start_telegraf
    pr[one-telegraf]+="$(measure "$tg_pid" true "http://127.0.0.1:$tg_port" lp.lua bench-token "$v2" "$CONNS" 1)"$'\n'
    stop_pid "$tg_pid"
    echo "peers round $r done" >&2
  done
  local direct tg
  direct=$(col_median "${pr[batch-influx]}" 1)
  printf '%-40s %12s %12s %10s %9s %9s %8s\n' "5000-line batches" "accepted/s" "reached/s" "CPU us/pt" "acc/infl" "rch/infl" "non-2xx"
  for t in interval always telegraf influx; do
    res=${pr[batch-$t]}
    case $t in
      interval | always) name="gateway /api/v2/write --fsync $t" ;;
      telegraf) name="Telegraf 1.37 influxdb_v2_listener" ;;
      influx) name="InfluxDB 1.8 /api/v2/write directly" ;;
    esac
    printf '%-40s %12.0f %12.0f %10.2f %9s %9s %8s\n' "$name" "$(col_median "$res" 1)" "$(col_median "$res" 3)" "$(col_median "$res" 2)" \
      "$(ratio "$(col_median "$res" 1)" "$direct")" "$(ratio "$(col_median "$res" 3)" "$direct")" "$(bad_total "$res")"
  done
  direct=$(col_median "${pr[one-bare]}" 1)
  tg=$(col_median "${pr[one-telegraf]}" 1)
  printf '%-40s %12s %12s %10s %9s %8s\n' "one point per request" "requests/s" "CPU us/req" "vs bare" "vs Tgraf" "non-2xx"
  for t in bare json-interval lp-interval json-always lp-always telegraf; do
    res=${pr[one-$t]}
    case $t in
      bare) name="bare net/http (204)" ;;
      json-*) name="gateway /api/submit --fsync ${t#json-}" ;;
      lp-*) name="gateway /api/v2/write --fsync ${t#lp-}" ;;
      telegraf) name="Telegraf 1.37 influxdb_v2_listener" ;;
    esac
    printf '%-40s %12.0f %12.1f %10s %9s %8s\n' "$name" "$(col_median "$res" 1)" "$(col_median "$res" 2)" \
      "$(ratio "$(col_median "$res" 1)" "$direct")" "$(ratio "$(col_median "$res" 1)" "$tg")" "$(bad_total "$res")"
  done
  echo "group commit, --fsync always, one point per request: $(col_median "${pr[groups]}" 1) groups/s," \
    "$(col_median "${pr[groups]}" 2) requests per fdatasync (medians over the runs)"
  echo "peak RSS: gateway --fsync interval $(hwm "${ppid[interval]}"), --fsync always $(hwm "${ppid[always]}")"
  kill "${ppid[interval]}" "${ppid[always]}"
}

# vm_section: VictoriaMetrics single-node as the backend: 5000-line batches
# into the gateway (forwarding through the v2 write API), into vmagent
# (its on-disk queue, remote-writing to the same VictoriaMetrics) and into
# VictoriaMetrics directly: points/s accepted, rows VictoriaMetrics stored
# during the load (one per field value: about 4 per line of these
# batches), CPU-us per point of the receiving process.
vm_section() {
  local r t res name vm_port ag_port vm_pid ag_pid
  local -A vr
  vm_port=$(free_port) ag_port=$(free_port)
  $PIN "$(scripts/peers.sh victoria-metrics)" -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$work/vm" -loggerLevel ERROR >"$work/vm.log" 2>&1 &
  vm_pid=$!
  pids+=($!)
  wait_up "http://127.0.0.1:$vm_port/health"
  $PIN "$(scripts/peers.sh vmagent)" -httpListenAddr "127.0.0.1:$ag_port" -remoteWrite.url "http://127.0.0.1:$vm_port/api/v1/write" \
    -remoteWrite.tmpDataPath "$work/vmagent" -loggerLevel ERROR >"$work/vmagent.log" 2>&1 &
  ag_pid=$!
  pids+=($!)
  wait_up "http://127.0.0.1:$ag_port/health"
  INFLUX_URL=http://127.0.0.1:$vm_port start_gateway vm --fsync interval
  vm_rows() { curl -s "http://127.0.0.1:$vm_port/metrics" | awk '/^vm_rows_inserted_total/ {s+=$2} END {printf "%d", s}'; }
  local v2="/api/v2/write?bucket=bench&org=x&precision=ns"
  echo "== 8. VictoriaMetrics v1.151.0 as the backend: 5000-line batches on $BATCH_CONNS connections, $ROUNDS rounds of $DURATION, interleaved"
  for r in $(seq 1 "$ROUNDS"); do
    vr[gateway]+="$(measure "$gw_pid" vm_rows "http://127.0.0.1:$gw_port" lpbatch.lua "$key" "$v2" "$BATCH_CONNS" 5000)"$'\n'
    wait_drained "$gw_port"
    vr[vmagent]+="$(measure "$ag_pid" vm_rows "http://127.0.0.1:$ag_port" lpbatch.lua x "$v2" "$BATCH_CONNS" 5000)"$'\n'
    sleep 2 # vmagent's queue drains to VictoriaMetrics
    vr[vm]+="$(measure "$vm_pid" vm_rows "http://127.0.0.1:$vm_port" lpbatch.lua x "$v2" "$BATCH_CONNS" 5000)"$'\n'
    echo "vm round $r done" >&2
  done
  local agent
  agent=$(col_median "${vr[vmagent]}" 1)
  printf '%-40s %12s %12s %10s %9s %8s\n' "5000-line batches" "accepted/s" "VM rows/s" "CPU us/pt" "vs vmagent" "non-2xx"
  for t in gateway vmagent vm; do
    res=${vr[$t]}
    case $t in
      gateway) name="gateway --fsync interval -> VM" ;;
      vmagent) name="vmagent (disk queue) -> VM" ;;
      vm) name="VictoriaMetrics directly" ;;
    esac
    printf '%-40s %12.0f %12.0f %10.2f %9s %8s\n' "$name" "$(col_median "$res" 1)" "$(col_median "$res" 3)" "$(col_median "$res" 2)" \
      "$(ratio "$(col_median "$res" 1)" "$agent")" "$(bad_total "$res")"
  done
  echo "peak RSS: gateway $(hwm "$gw_pid"), vmagent $(hwm "$ag_pid")"
  kill "$gw_pid" "$ag_pid" "$vm_pid"
}
hwm() { awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }

case "${BENCH_ONLY:-}" in
  checks) checks_section; exit 0 ;;
  peers) peers_section; exit 0 ;;
  vm) vm_section; exit 0 ;;
  "") ;;
  *) echo "BENCH_ONLY=$BENCH_ONLY: want checks, peers or vm" >&2; exit 2 ;;
esac

if section 1; then
echo "== 1. one point per request, $CONNS connections, $ROUNDS rounds of $DURATION, interleaved"
declare -A results
for r in $(seq 1 "$ROUNDS"); do
  results[bare]+="$(run_wrk_cpu "$bare_pid" "http://127.0.0.1:$bare_port/" "$work/one.json" "$CONNS")"$'\n'
  results[shaped]+="$(run_wrk_cpu "$bare_pid" "http://127.0.0.1:$bare_port/submit-shaped" "$work/one.json" "$CONNS")"$'\n'
  for mode in always interval; do
    if [ "$r" = 1 ] && [ "$mode" = always ]; then
      curl -fs -o "$work/cpu-always.pprof" "http://127.0.0.1:${debug[$mode]}/debug/pprof/profile?seconds=5" &
      prof=$!
    fi
    results[$mode]+="$(run_wrk_cpu "${pid[$mode]}" "http://127.0.0.1:${port[$mode]}/api/submit" "$work/one.json" "$CONNS")"$'\n'
    [ "$r" = 1 ] && [ "$mode" = always ] && wait "$prof"
    wait_drained "${port[$mode]}"
  done
  results[postgres]+="$(key=$pgkey run_wrk_cpu "${pid[postgres]}" "http://127.0.0.1:${port[postgres]}/api/submit" "$work/one.json" "$CONNS")"$'\n'
  wait_drained "${port[postgres]}"
  echo "round $r done" >&2
done
bare_rps=$(col_median "${results[bare]}" 1)
# CPU per request, in microseconds: the server's own, and InfluxDB's for
# the points the gateway forwards, on the same two cores as wrk.
printf '%-28s %12s %9s %9s %9s %8s %11s %12s\n' target "requests/s" "p50 ms" "p99 ms" "vs bare" "non-2xx" "server us" "influxd us"
for t in bare shaped always interval postgres; do
  rps=$(col_median "${results[$t]}" 1)
  p50=$(col_median "${results[$t]}" 2)
  p99=$(col_median "${results[$t]}" 3)
  bad=$(awk 'NF {s+=$4} END {print s+0}' <<<"${results[$t]}")
  scpu=$(col_median "${results[$t]}" 6)
  icpu=$(col_median "${results[$t]}" 7)
  case $t in
    bare) name="bare net/http (204)" ;;
    shaped) name="bare, answering as submit" ;;
    postgres) name="... interval, PostgreSQL keys" ;;
    *) name="/api/submit --fsync $t" ;;
  esac
  printf '%-28s %12.0f %9s %9s %9.2f %8s %11.1f %12.1f\n' "$name" "$rps" "$p50" "$p99" "$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN {print a/b}')" "$bad" "$scpu" "$icpu"
done
echo "PostgreSQL keys vs SQLite keys (both --fsync interval), requests/s: $(awk -v a="$(col_median "${results[postgres]}" 1)" -v b="$(col_median "${results[interval]}" 1)" 'BEGIN {printf "%.3f", a/b}')"
fi

if section 2; then
echo
echo "== 2. batches of 5000 points, $BATCH_CONNS connections"
forwarded() { curl -fs "http://127.0.0.1:${admin_of[$1]}/readyz" | sed -n 's/.*"points_forwarded":\([0-9]*\).*/\1/p'; }
# batch_rounds PORT UNPACED_PORT: ROUNDS rounds of InfluxDB's own rate, then
# the gateway at PORT (defaults, so paced) accepting and delivering during
# the load, then the one at UNPACED_PORT (--pace-batches 0) accepting,
# delivering during the load and draining the backlog it built; prints the
# table.
batch_rounds() {
  local port=$1 uport=$2 r f0 f1 f2 t0 t1 t2 i0 i1 i2 res v name use
  local -A brate
  # load PORT KEY: a wrk run of batches at PORT; records KEY-accepted and
  # KEY-during, and leaves f1 and t1 at its end.
  load() {
    f0=$(forwarded "$1"); t0=$(date +%s.%N); i0=$(cpu_ticks "$influx_pid")
    res=$(run_wrk "http://127.0.0.1:$1/api/submit" "$work/batch.json" "$BATCH_CONNS")
    f1=$(forwarded "$1"); t1=$(date +%s.%N); i1=$(cpu_ticks "$influx_pid")
    brate[$2-accepted]+="$(awk '{print $1*5000}' <<<"$res")"$'\n'
    brate[$2-during]+="$(awk -v a="$f1" -v b="$f0" -v s="$t0" -v e="$t1" 'BEGIN {print (a-b)/(e-s)}') $(influx_use "$i0" "$i1" "$t0" "$t1" $((f1 - f0)))"$'\n'
  }
  for r in $(seq 1 "$ROUNDS"); do
    t0=$(date +%s.%N); i0=$(cpu_ticks "$influx_pid")
    res=$(run_wrk "$INFLUX_URL/write?db=bench" "$work/batch.lp" "$BATCH_CONNS" text/plain)
    t1=$(date +%s.%N); i1=$(cpu_ticks "$influx_pid")
    brate[influx]+="$(awk '{print $1*5000}' <<<"$res") $(influx_use "$i0" "$i1" "$t0" "$t1" "$(awk '{print $5*5000}' <<<"$res")")"$'\n'
    load "$port" paced
    wait_drained "$port"
    load "$uport" unpaced
    # The backlog's delivery rate over a fixed window with nothing polling
    # the gateway meanwhile: polling every 50 ms until it was empty cost the
    # drain 5-15% in a trial. The backlog outlasts the window (seconds of
    # points are left), so the forwarder is never short of work in it.
    i1=$(cpu_ticks "$influx_pid")
    sleep "$DRAIN_WINDOW"
    f2=$(forwarded "$uport"); t2=$(date +%s.%N); i2=$(cpu_ticks "$influx_pid")
    [ "$(spool_points "$uport")" != 0 ] || echo "warning: the backlog ran out within the ${DRAIN_WINDOW}s window; the drain rate is understated" >&2
    wait_drained "$uport"
    # The backlog left when the load stops drains with InfluxDB and the
    # forwarder alone on the machine: the forwarder's delivery rate under the
    # same conditions as InfluxDB's own measurement.
    brate[drain]+="$(awk -v a="$f2" -v b="$f1" -v s="$t1" -v e="$t2" 'BEGIN {print (e>s && a>b) ? (a-b)/(e-s) : 0}') $(influx_use "$i1" "$i2" "$t1" "$t2" $((f2 - f1)))"$'\n'
  done
  local influx_rate
  influx_rate=$(col_median "${brate[influx]}" 1)
  printf '%-56s %14s %10s %8s %9s\n' target "points/s" "vs InfluxDB" "influxd" "influxd"
  printf '%-56s %14s %10s %8s %9s\n' "" "" "" "CPUs" "us/point"
  for t in influx paced-accepted paced-during unpaced-accepted unpaced-during drain; do
    v=$(col_median "${brate[$t]}" 1)
    use="$(printf '%8s %9s' - -)"
    [[ $t == *accepted ]] || use=$(printf '%8.2f %9.2f' "$(col_median "${brate[$t]}" 2)" "$(col_median "${brate[$t]}" 3)")
    case $t in
      influx) name="InfluxDB /write directly" ;;
      paced-accepted) name="gateway accepted (--fsync always)" ;;
      paced-during) name="gateway delivered to InfluxDB, during the load" ;;
      unpaced-accepted) name="--pace-batches 0: accepted" ;;
      unpaced-during) name="--pace-batches 0: delivered, during the load" ;;
      drain) name="--pace-batches 0: delivered, the backlog after it" ;;
    esac
    printf '%-56s %14.0f %10.2f %s\n' "$name" "$v" "$(awk -v a="$v" -v b="$influx_rate" 'BEGIN {print a/b}')" "$use"
  done
}
start_gateway unpaced --fsync always --pace-batches 0
batch_rounds "${port[always]}" "$gw_port"

# On this machine wrk, the gateway and InfluxDB share every CPU, so points
# the gateway parses are CPU InfluxDB does not get. Where InfluxDB has a CPU
# of its own, as it would on its own host, the question is only whether the
# gateway keeps it as busy as a client writing directly does.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && taskset -a -p -c 1 "$influx_pid" >/dev/null; then
  echo
  echo "== 2b. the same with InfluxDB on CPU 1, wrk and the gateways on CPU 0"
  PIN="taskset -c 0"
  start_gateway pinned --fsync always
  pinned_port=$gw_port pinned_pid=$gw_pid
  start_gateway pinned-unpaced --fsync always --pace-batches 0
  WRK_THREADS=1 batch_rounds "$pinned_port" "$gw_port"
  kill "$pinned_pid" "$gw_pid"
  PIN=
  taskset -a -p -c "0-$(($(nproc) - 1))" "$influx_pid" >/dev/null
else
  echo
  echo "== 2b. skipped: it needs two CPUs and taskset"
fi
fi

if section 3; then
echo
echo "== 3. key look-up cost on SQLite and PostgreSQL, and a replica's start with 1,000,000 keys (go test -bench)"
# The Go benchmarks make their PostgreSQL databases on the bench's server.
export METRICGATE_POSTGRES_URL=$POSTGRES_URL
go test -run '^$' -bench 'Authenticate' -benchtime 20000x ./pkg/keystore | awk '/^Benchmark/ {print}'
go test -run '^$' -bench 'Start' -benchtime 5x ./pkg/keystore | awk '/^Benchmark/ {print}'

echo
echo "== 3b. the submit handler alone, one point, no network (go test -bench)"
go test -run '^$' -bench 'Submit' -benchmem ./pkg/server | awk '/^Benchmark/ {print}'
fi

if section 4 && section 1; then
echo
echo "== 3c. group commit in the spool alone, 16 appenders (go test -bench)"
go test -run '^$' -bench 'BenchmarkAppend' ./pkg/spool | awk '/^Benchmark/ {print}'

echo
echo "== 4. peak RSS"
for mode in always interval; do
  echo "apiserver --fsync $mode, through all of the above: $(hwm "${pid[$mode]}")"
done
# Many batch clients at once, on a gateway that has served nothing before,
# so the peak is what they alone cost.
start_gateway crowd --fsync always
res=$(run_wrk "http://127.0.0.1:$gw_port/api/submit" "$work/batch.json" "$CONNS")
echo "a fresh apiserver --fsync always, 5000-point batches on $CONNS connections: $(hwm "$gw_pid") ($(awk '{printf "%.0f", $1*5000}' <<<"$res") points/s accepted, $(awk '{print $4}' <<<"$res") non-2xx)"
kill "$gw_pid"
fi

if section 5; then
echo
checks_section
fi

if section 6; then
echo
echo "== 6. an apiserver on a PostgreSQL key store with 1,000,000 keys: from start to its first accepted point"
psql=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1)
big=${POSTGRES_URL/\/bench\?/\/big?}
"$psql" -X -q -v ON_ERROR_STOP=1 -d "$POSTGRES_URL" -c 'CREATE DATABASE big'
bigkey=$("$work/keyctl" --db "$big" generate --hostname 127.0.0.1 --description bench --quiet)
"$psql" -X -q -v ON_ERROR_STOP=1 -d "$big" -c "INSERT INTO api_keys (key_hash, prefix, hostname, created_at)
  SELECT sha256(convert_to(gen_random_uuid()::text, 'UTF8')), substr(md5(i::text), 1, 8), 'bench', 0 FROM generate_series(2, 1000000) AS i" -c 'ANALYZE api_keys'
echo "keys in the store: $("$psql" -X -qtA -d "$big" -c 'SELECT count(*) FROM api_keys')"
for r in $(seq 1 "$ROUNDS"); do
  t0=$(date +%s.%N)
  start_gateway "big-$r" --fsync always --db "$big" --node-name "big-$r"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $bigkey" -H "Content-Type: application/json" -d @"$work/one.json" "http://127.0.0.1:$gw_port/api/submit")" = 200 ]; do sleep 0.01; done
  echo "round $r: first point accepted $(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e-s}') s after the start, peak RSS $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$gw_pid/status")"
  kill "$gw_pid"
  wait "$gw_pid" 2>/dev/null || true
done
fi

if section 7; then
echo
peers_section
fi

if section 8; then
echo
vm_section
fi

if section 10; then
echo
limits_section
fi

if section 1; then
echo
echo "== CPU profile of --fsync always, round 1 (top 15 by cumulative time)"
go tool pprof -top -cum -nodecount=15 "$work/apiserver" "$work/cpu-always.pprof" 2>/dev/null | sed -n '1,22p'
fi
