#!/usr/bin/env bash
# Runs the whole test suite with the race detector. The keyring tests talk
# to a real Secret Service: gnome-keyring inside a private D-Bus session.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} for the keyring tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing; the real-keyring tests will be skipped" >&2
  fi
fi

# The Promela model of the refresh transaction, checked exhaustively by
# spin (installed from Debian's packages as root; skipped otherwise).
./model/check.sh

if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec go test -race -count=1 -timeout 60m "$@" ./...' sh "$@"
else
  go test -race -count=1 -timeout 60m "$@" ./...
fi

# A store kind kept outside the module (examples/dirstore, its own Go
# module): it registers itself and passes the conformance suite.
(cd examples/dirstore && go test -race -count=1 "$@" ./...)

# Interop with ORY Hydra, in its own Go module: the suite builds Hydra from
# the Go module proxy (cgo, once, into the user cache; LATCH_HYDRA_BIN
# names a ready one) and drives the real latch binary against it.
cd interop/hydra
exec go test -race -count=1 -timeout 30m "$@" ./...
