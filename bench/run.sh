#!/usr/bin/env bash
# Runs every benchmark that docs/benchmarks.md reports, in one run, side by side
# with the peer each is compared with. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## $(go version), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "### Per-request overhead (valid token, in-memory base)"
go test -run '^$' -bench 'RoundTrip' -benchmem -count 5 ./bench/ | grep Benchmark
echo
echo "### Streaming upload"
go run ./bench/upload -size 1024
echo
echo "### Refresh storm"
go run ./bench/storm -trials 10
echo
echo "### CLI start-up: latch auth token with a valid token in the file store"
go test -run '^$' -bench StartupAuthToken -benchtime 300x ./cmd/latch/ | grep Benchmark
echo
echo "### Credential helper start-up, against hello world and the peers (ECR helper, git credential-cache)"
./bench/peers/run.sh
echo
echo "### Storm against the same batch on a valid token (N = 8, 32, 64)"
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
    go test -run "^$" -bench LocalStorm -benchtime 5x ./bench/' 2>/dev/null | grep Benchmark
else
  go test -run '^$' -bench LocalStorm -benchtime 5x ./bench/ | grep Benchmark
fi
echo
echo "### Credential stores: file and real Secret Service (gnome-keyring)"
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
    go test -run "^$" -bench . -benchtime 200x ./filestore/ ./keyring/' 2>/dev/null | grep Benchmark
else
  go test -run '^$' -bench . -benchtime 200x ./filestore/ ./keyring/ | grep Benchmark
fi
echo
echo "### An idle latch agent: memory and CPU (AGENT_IDLE=60s by default)"
go run ./bench/agentidle -duration "${AGENT_IDLE:-60s}"
echo
echo "### Chaos: strict and grace-period servers (CHAOS=10m by default, per server)"
go run ./bench/chaos -duration "${CHAOS:-10m}"
