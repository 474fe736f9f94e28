#!/usr/bin/env bash
# Installs the system packages the test suite needs (redis-server, Chromium, wrk) when they are
# missing, using Debian's packages; as root directly, otherwise through sudo if it is there.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # load generator of loadtests/bench.py
if [ ${#missing[@]} -eq 0 ]; then
  echo "system-packages: redis-server, chromium and wrk are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: please install ${missing[*]} (no apt-get here)" >&2
  exit 0
fi
run_as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then run_as_root=(sudo -n); else
    echo "system-packages: please install ${missing[*]} (not root, no sudo)" >&2
    exit 0
  fi
fi
echo "system-packages: installing ${missing[*]} with apt-get (Debian packages; redis-server for the tests, chromium for the browser tests, wrk for the bench)"
export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -qq
# --no-install-recommends keeps the machine's running services (e.g. an existing Redis) untouched
"${run_as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
