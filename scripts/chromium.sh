#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages for the web console's
# browser test, if it is not there yet, and prints its path.
#
#   scripts/chromium.sh          install if absent, print /usr/bin/chromium
set -euo pipefail

bin=/usr/bin/chromium

if [ ! -x "$bin" ]; then
  echo "installing chromium from Debian's packages (once)" >&2
  sudo=
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium >&2
fi
echo "$bin"
