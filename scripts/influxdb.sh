#!/usr/bin/env bash
# The local InfluxDB 1.8.10 of the benchmarks and the quickstart: the
# testenv command's InfluxDB (scripts/testenv.sh), which holds its
# configuration and the port picker the tests use too.
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

case "${1:-}" in
  port) exec "$(dirname "$0")/testenv.sh" port ;;
  install | bin | start | stop) exec "$(dirname "$0")/testenv.sh" influxdb "$@" ;;
  *) echo "usage: $0 install | bin | start DIR [DB] | stop DIR | port" >&2; exit 2 ;;
esac
