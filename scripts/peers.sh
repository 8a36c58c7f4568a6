#!/usr/bin/env bash
# Builds the peers scripts/bench.sh measures the gateway against, with go
# install, into the project's cache (~/.cache/metricgate, or
# $METRICGATE_CACHE), once, and prints the path of what was asked for.
#
#   scripts/peers.sh telegraf          Telegraf 1.37 with only the plugins
#                                      the bench uses: inputs.influxdb_v2_listener,
#                                      outputs.influxdb_v2, outputs.discard
#   scripts/peers.sh victoria-metrics  VictoriaMetrics single-node v1.151.0
#   scripts/peers.sh vmagent           vmagent v1.151.0 (same module)
#
# Each takes a minute or two to build the first time.
set -euo pipefail

cache=${METRICGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metricgate}
TELEGRAF_VERSION=1.37.2
VM_VERSION=1.151.0

install() { # install DIR PACKAGE@VERSION [go install flags...]
  local dir=$1 pkg=$2
  shift 2
  if [ ! -x "$dir/bin/$(basename "${pkg%@*}")" ]; then
    echo "building $pkg into $dir (once)" >&2
    mkdir -p "$dir/bin"
    GOBIN="$dir/bin" CGO_ENABLED=0 go install "$@" "$pkg" >&2
  fi
  echo "$dir/bin/$(basename "${pkg%@*}")"
}

case "${1:-}" in
  telegraf)
    install "$cache/telegraf-$TELEGRAF_VERSION" "github.com/influxdata/telegraf/cmd/telegraf@v$TELEGRAF_VERSION" \
      -tags "custom,inputs.influxdb_v2_listener,outputs.influxdb_v2,outputs.discard" ;;
  victoria-metrics | vmagent)
    install "$cache/victoriametrics-$VM_VERSION" "github.com/VictoriaMetrics/VictoriaMetrics/app/$1@v$VM_VERSION" ;;
  *) echo "usage: $0 telegraf | victoria-metrics | vmagent" >&2; exit 2 ;;
esac
