#!/usr/bin/env bash
# Runs every fuzz target for a short while (default 10s each). The seed
# corpora also run as ordinary tests in scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/latch-fuzz.log 2>&1 || { cat /tmp/latch-fuzz.log; exit 1; }
  done
done
