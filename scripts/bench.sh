#!/usr/bin/env bash
# Measures metricgate's throughput against a real InfluxDB, with the load
# driven by wrk from a separate process, for a bounded time, in several
# interleaved rounds, and prints a table of ratios measured in the same run.
#
#   scripts/bench.sh              # ROUNDS=3 DURATION=8s CONNS=32
#   ROUNDS=5 DURATION=10s scripts/bench.sh
#   BENCH_ONLY=checks scripts/bench.sh   # section 5 alone
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
#    defaults: point budgets, time window, series per key, schema guard)
#    and one with them off, one point per request and batches.
# 6. An apiserver on a PostgreSQL key store holding 1,000,000 keys: the
#    time from its start to its first accepted point.
# 7. Rate limits shared through Redis (--limits, a private redis-server
#    that scripts/testenv.sh starts) beside this replica's own, one point
#    per request on a key whose limit (--default-rate 1000000) every
#    request takes a token from but none reaches: requests/s, and the
#    leases asked of Redis per request.
# Everything listens on loopback and stops by itself. SECTIONS runs only
# the sections named (SECTIONS="1 6" scripts/bench.sh); 4 needs 1.
# BENCH_ONLY=checks is SECTIONS=5.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-32}
BATCH_CONNS=${BATCH_CONNS:-4}
DRAIN_WINDOW=${DRAIN_WINDOW:-2}
SECTIONS=${SECTIONS:-1 2 3 4 5 6 7}
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
  scripts/testenv.sh redis stop "$work/redis" || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/apiserver" ./cmd/apiserver
go build -o "$work/keyctl" ./cmd/keyctl
go build -o "$work/bare" ./scripts/bench/bare

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
  $PIN "$work/apiserver" --listen "127.0.0.1:$gw_port" --admin-listen "127.0.0.1:${admin_of[$gw_port]}" --influx-url "$INFLUX_URL" --influx-bucket bench \
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
# requests", run as $PIN wrk -t$WRK_THREADS.
run_wrk() {
  local out n
  out=$(BODY_FILE=$2 API_KEY=$key CONTENT_TYPE=${4:-application/json} \
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
# defaults) and off, in interleaved rounds: one point per request and
# 5000-point batches, each without pacing (--pace-batches 0), so what is
# accepted is the gateway's own rate, and --fsync interval, so it is bound
# by CPU, where the checks' cost shows.
checks_section() {
  local r mode res off_flags
  local -A cport cpid cres
  off_flags=(--max-future 0 --max-fields 0 --max-tags 0 --max-series-per-key 0 --schema-guard=false)
  start_gateway checks-on --fsync interval --pace-batches 0
  cport[on]=$gw_port cpid[on]=$gw_pid
  start_gateway checks-off --fsync interval --pace-batches 0 "${off_flags[@]}"
  cport[off]=$gw_port cpid[off]=$gw_pid
  echo "== 5. the isolation checks on (defaults) and off (${off_flags[*]}), --fsync interval, --pace-batches 0, $ROUNDS rounds of $DURATION, interleaved"
  for r in $(seq 1 "$ROUNDS"); do
    for mode in on off; do
      res=$(run_wrk "http://127.0.0.1:${cport[$mode]}/api/submit" "$work/one.json" "$CONNS")
      cres[one-$mode]+="$res"$'\n'
      wait_drained "${cport[$mode]}"
      res=$(run_wrk "http://127.0.0.1:${cport[$mode]}/api/submit" "$work/batch.json" "$BATCH_CONNS")
      cres[batch-$mode]+="$(awk '{print $1*5000, $4}' <<<"$res")"$'\n'
      wait_drained "${cport[$mode]}"
    done
    echo "checks round $r done" >&2
  done
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
  echo "== 7. rate limits of this replica alone and shared through Redis (--limits), one point per request, $CONNS connections, --fsync interval, $ROUNDS rounds of $DURATION, interleaved"
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
if [ "${BENCH_ONLY:-}" = checks ]; then
  checks_section
  exit 0
fi

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
echo "== 4. peak RSS"
hwm() { awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
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
limits_section
fi

if section 1; then
echo
echo "== CPU profile of --fsync always, round 1 (top 15 by cumulative time)"
go tool pprof -top -cum -nodecount=15 "$work/apiserver" "$work/cpu-always.pprof" 2>/dev/null | sed -n '1,22p'
fi
