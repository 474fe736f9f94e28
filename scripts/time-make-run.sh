#!/usr/bin/env bash
# Times `make run` from a fresh clone to the dashboard answering, then again when installed
# (with the data folder kept, and with a new one). Prints one line per round, in seconds.
# Usage: scripts/time-make-run.sh   (clones the committed tree; needs curl and a free port)
set -euo pipefail
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -INT -- "-$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
git clone -q --no-local "$top" "$work/splitwerk"
cd "$work/splitwerk"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for round in clean-clone installed installed-new-data; do
  [ "$round" = installed-new-data ] && rm -rf .splitwerk
  start=$(date +%s.%N)
  setsid make run PORT="$port" >"$work/$round.log" 2>&1 &  # own process group: stopped as one
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/dashboard/login"; do
    if ! kill -0 "$pid" 2>/dev/null; then tail -20 "$work/$round.log" >&2; exit 1; fi
    sleep 0.2
  done
  end=$(date +%s.%N)
  echo "make run, $round: $(python3 -c "print(f'{$end - $start:.1f}')") s to the dashboard"
  kill -INT -- "-$pid"
  wait "$pid" || true
  pid=""
done
