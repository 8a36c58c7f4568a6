#!/usr/bin/env bash
# The one test command: formatting, vet, then every test with the race
# detector against real SQLite files and real servers. It installs what
# the tests need the first time (InfluxDB 1.8.10 built into a cache;
# Chromium, PostgreSQL and Redis from Debian's packages, scripts/deps.sh),
# starts the InfluxDB and PostgreSQL the tests share on free loopback ports
# (scripts/testenv.sh up) and stops them at the end. Arguments go to
# go test.
set -euo pipefail
cd "$(dirname "$0")/.."

files=$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')
unformatted=$(gofmt -l $files)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet ./...

scripts/deps.sh
servers=$(mktemp -d)
trap 'scripts/testenv.sh down "$servers"; rm -rf "$servers"' EXIT
env=$(scripts/testenv.sh up "$servers")
eval "$env"
export METRICGATE_INFLUX_URL METRICGATE_POSTGRES_URL
echo "servers for the tests: InfluxDB $METRICGATE_INFLUX_URL, PostgreSQL $METRICGATE_POSTGRES_URL"

go test -race -count=1 "$@" ./...
