#!/usr/bin/env bash
# Model-checks model/refresh.pml with spin, exhaustively: the correct
# model must hold every assertion (strict server and grace period), and
# each break switch must make spin find the violation it guards against.
# Installs spin (Debian package) as root when it is missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v spin >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin gcc >/dev/null
  else
    echo "model: spin is not installed; skipping the model check" >&2
    exit 0
  fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp refresh.pml "$work/"
cd "$work"

# check NAME WANT DEFINES...: WANT is "holds" or "violated".
fail=0
check() {
  local name=$1 want=$2; shift 2
  spin "$@" -a refresh.pml >/dev/null
  gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=4096 -o pan pan.c 2>/dev/null
  local out errors states
  out=$(./pan -m100000 2>&1)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" | head -1)
  local got=holds
  [ "${errors:-1}" = 0 ] || got=violated
  local what
  what=$(grep -o 'assertion violated.*' <<<"$out" | head -1 || true)
  printf '%-34s %-9s %10s states  %s\n' "$name" "$got" "${states:-?}" "$what"
  if grep -q 'max search depth too small\|out of memory' <<<"$out"; then
    echo "  the search was not exhaustive" >&2; fail=1
  fi
  [ "$got" = "$want" ] || { echo "  want $want" >&2; fail=1; }
}

check "3 processes x 1 op, strict"      holds    -DN=3 -DOPS=1
check "3 processes x 1 op, grace"       holds    -DN=3 -DOPS=1 -DGRACE=1
check "2 processes x 2 ops, strict"     holds    -DN=2 -DOPS=2
check "2 processes x 2 ops, grace"      holds    -DN=2 -DOPS=2 -DGRACE=1
check "break: no re-read under lock"    violated -DN=2 -DOPS=1 -DBREAK_REREAD=1
check "break: write in place"           violated -DN=2 -DOPS=1 -DBREAK_ATOMIC=1
check "break: logout outside the lock"  violated -DN=2 -DOPS=1 -DBREAK_LOGOUT_LOCK=1
check "break: exit on Ctrl-C mid-refresh" violated -DN=2 -DOPS=1 -DBREAK_NO_WAIT=1
check "break: a waiter redeems unlocked" violated -DN=3 -DOPS=1 -DBREAK_WAITER_REDEEMS=1
# Not a switch that breaks latch but the fleet's residual risk: a lease
# (redisstore) that runs out while its holder is frozen lets a second
# process redeem the same refresh token (pgstore's lock cannot run out).
check "lease runs out (redis), strict"  violated -DN=2 -DOPS=1 -DLEASE=1
exit $fail
