#!/usr/bin/env bash
# Runs metricgate on this machine with everything it needs: a local InfluxDB
# 1.8.10 (built into a cache once, data kept in .run/influxdb), the key store
# (.run/api_keys.db unless KEYSTORE_DB is set), the spool (.run/spool), and
# the apiserver on 127.0.0.1:5002 (APISERVER_LISTEN to change), with the
# admin API and web console on 127.0.0.1:5003 (APISERVER_ADMIN_LISTEN). It generates
# a key for 127.0.0.1 and prints a curl command that submits a point with it.
# Ctrl-C stops the apiserver and InfluxDB.
#
# scripts/run.sh --replicas N runs a cluster instead: N gateways behind
# HAProxy on PostgreSQL and Redis (scripts/cluster.sh N).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--replicas" ]; then
  exec scripts/cluster.sh "${2:-3}"
fi

mkdir -p bin .run
go build -o bin/apiserver ./cmd/apiserver
go build -o bin/keyctl ./cmd/keyctl

export KEYSTORE_DB=${KEYSTORE_DB:-.run/api_keys.db}
export APISERVER_LISTEN=${APISERVER_LISTEN:-127.0.0.1:5002}
export APISERVER_ADMIN_LISTEN=${APISERVER_ADMIN_LISTEN:-127.0.0.1:5003}
export APISERVER_SPOOL_DIR=${APISERVER_SPOOL_DIR:-.run/spool}
export INFLUX_BUCKET=${INFLUX_BUCKET:-metricgate}

if [ -z "${INFLUX_URL:-}" ]; then
  scripts/influxdb.sh stop .run/influxdb
  eval "$(scripts/influxdb.sh start .run/influxdb "${INFLUX_BUCKET%%/*}")"
  export INFLUX_URL
  trap 'scripts/influxdb.sh stop .run/influxdb' EXIT
fi

key=$(bin/keyctl generate --hostname 127.0.0.1 --description "quickstart" --quiet)
port=${APISERVER_LISTEN##*:}
cat <<MSG

metricgate is starting on $APISERVER_LISTEN
  InfluxDB:  $INFLUX_URL (database $INFLUX_BUCKET)
  key store: $KEYSTORE_DB (manage keys with: KEYSTORE_DB=$KEYSTORE_DB bin/keyctl list)

A key for 127.0.0.1 was generated; submit a point with:

  curl -X POST http://127.0.0.1:$port/api/submit -H "Content-Type: application/json" -H "X-API-Key: $key" -d '{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}'

and see it in InfluxDB with:

  curl -sG $INFLUX_URL/query --data-urlencode "db=${INFLUX_BUCKET%%/*}" --data-urlencode "q=SELECT * FROM custom_metrics"

The web console is at http://$APISERVER_ADMIN_LISTEN/admin/; sign in with an admin key:

  KEYSTORE_DB=$KEYSTORE_DB bin/keyctl generate --hostname 127.0.0.1 --scope admin --description console

MSG
# GODEBUG: the Go runtime's monitor, as the systemd unit sets it (README:
# Running in production).
GODEBUG=${GODEBUG:-schedtrace=2147483647} bin/apiserver --log-format text &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; scripts/influxdb.sh stop .run/influxdb' EXIT INT TERM
wait $server
