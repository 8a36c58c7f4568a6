#!/usr/bin/env bash
# Runs the testenv command (internal/testenv/cmd/testenv), built into
# bin/testenv first: the scripts' one way to start InfluxDB, PostgreSQL and
# Redis and to pick ports, with the configuration the tests use.
#
#   scripts/testenv.sh            list its commands
#   scripts/testenv.sh up DIR     start the servers the tests share and print
#                                 METRICGATE_INFLUX_URL=... and
#                                 METRICGATE_POSTGRES_URL=... to eval
#   scripts/testenv.sh down DIR   stop them
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
(cd "$root" && go build -o bin/testenv ./internal/testenv/cmd/testenv)
exec "$root/bin/testenv" "$@"
