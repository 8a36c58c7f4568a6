#!/usr/bin/env bash
# The one test command: formatting, vet, then every test with the race
# detector against real SQLite files and a real InfluxDB 1.8.10, which this
# script builds into a cache (once) and starts on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

files=$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')
unformatted=$(gofmt -l $files)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet ./...

influx_dir=$(mktemp -d)
trap 'scripts/influxdb.sh stop "$influx_dir"; rm -rf "$influx_dir"' EXIT
eval "$(scripts/influxdb.sh start "$influx_dir")"
export METRICGATE_INFLUX_URL=$INFLUX_URL
# Tests that stop and restart InfluxDB start their own from this binary.
export METRICGATE_INFLUXD=$(scripts/influxdb.sh bin)
echo "InfluxDB for the tests: $INFLUX_URL"
# The web console's browser test drives headless Chromium from Debian's
# packages, installed the first time.
METRICGATE_CHROMIUM=$(scripts/chromium.sh)
export METRICGATE_CHROMIUM

go test -race -count=1 "$@" ./...
