#!/usr/bin/env bash
# Proves the repository stands alone: clones the committed tree into an empty temporary folder
# with no siblings, refuses lines that reach outside it, and collects the whole suite there.
# Usage: scripts/check-self-contained.sh PYTHON   (the venv's interpreter with the test tools)
set -euo pipefail
arg=${1:?usage: check-self-contained.sh PYTHON}
python="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"  # absolute, venv link kept
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q --no-local "$top" "$work/alone"
cd "$work/alone"

# No code, test or build file may name the folder beside the checkout or this machine's paths.
outside=$(git grep -nE -e '\.\./shared' -e '/work/' -- ':!*.md' ':!CHANGELOG*' ':!scripts/check-self-contained.sh' || true)
if [ -n "$outside" ]; then
  printf 'self-contained: these lines reach outside the repository:\n%s\n' "$outside" >&2
  exit 1
fi
# Collection imports every test module and its fixtures' module-level reads (spec vectors, the
# conditions table); the clone's own packages come first on sys.path through `python -m`.
"$python" -m pytest --collect-only -q -p no:cacheprovider >"$work/collect.log" 2>&1 || {
  tail -30 "$work/collect.log" >&2
  echo "self-contained: the suite does not collect in a lone clone" >&2
  exit 1
}
# The node tests read the vectors and the snippet by relative URL; run them in the clone too,
# with the packages `npm ci` installed in the checkout (installing is not what this checks).
[ -d "$top/sdk/js/node_modules" ] && ln -s "$top/sdk/js/node_modules" sdk/js/node_modules
node --test tests/js/ >"$work/node.log" 2>&1 || {
  tail -30 "$work/node.log" >&2
  echo "self-contained: the node tests fail in a lone clone" >&2
  exit 1
}
echo "self-contained: $(tail -1 "$work/collect.log") in a lone clone; node tests pass there"
