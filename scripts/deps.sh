#!/usr/bin/env bash
# Installs from Debian's packages whatever of the named packages this
# machine lacks, with apt-get (as root, or through sudo), after one
# apt-get update. Without arguments: what the tests need.
#
#   scripts/deps.sh               chromium (the web console's browser test),
#                                 postgresql, redis-server, ansible-core
#                                 (the test that runs docs/ansible), haproxy
#                                 (the cluster tests' load balancer)
#   scripts/deps.sh PACKAGE...    those (scripts/bench.sh: wrk)
set -euo pipefail

if [ $# -eq 0 ]; then set -- chromium postgresql redis-server ansible-core haproxy; fi
missing=()
for p in "$@"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "installing ${missing[*]} from Debian's packages (once)" >&2
sudo=
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
$sudo apt-get update >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}" >&2
