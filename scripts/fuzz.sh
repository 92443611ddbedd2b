#!/usr/bin/env bash
# Runs every fuzz target for a short while (default 10s each). The seed
# corpora also run as ordinary tests in scripts/test.sh.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" at the end of -fuzztime, having found nothing
# (go.dev/issue/75804, fixed in Go 1.27). Such a run, with no failing
# input written, is tried once more; a real finding (a new file under
# testdata/fuzz/TARGET, or any other failure) fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
log=$(mktemp)
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    for try in 1 2; do
      echo "fuzz $pkg $f ($t)"
      before=$(count "$dir/testdata/fuzz/$f")
      if go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >"$log" 2>&1; then
        break
      fi
      after=$(count "$dir/testdata/fuzz/$f")
      if [ "$try" = 1 ] && [ "$after" = "$before" ] && grep -q '^    context deadline exceeded$' "$log" \
        && ! grep -q 'Failing input written' "$log"; then
        echo "  the Go fuzz coordinator's deadline race (go.dev/issue/75804), no input found: trying once more"
        continue
      fi
      cat "$log"
      exit 1
    done
  done
done
