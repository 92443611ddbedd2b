#!/usr/bin/env bash
# Builds the peers pinned in this module (amazon-ecr-credential-helper)
# and runs BenchmarkHelperStartup with them: latch's helpers, hello world
# and each peer alternately in one loop, medians. git's credential-cache
# is the git peer and needs only git. No peer reaches the network.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -o "$out/docker-credential-ecr-login" \
  github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login
cd ../..
LATCH_BENCH_ECR="$out/docker-credential-ecr-login" \
  go test -run '^$' -bench HelperStartup -benchtime "${N:-300}x" ./bench/ | grep Benchmark
