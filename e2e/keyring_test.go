package e2e

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/keyring"
	"github.com/latchdev/latch/oauthtest"
)

// TestKeyringEndToEnd: with a real Secret Service (gnome-keyring under
// dbus-run-session, as scripts/test.sh runs it), `auto` picks the keyring;
// the credential lives there, refreshes there, and logout removes it.
func TestKeyringEndToEnd(t *testing.T) {
	needKeyring(t)
	e := newEnv(t, oauthtest.Options{})
	e.environ = append(e.environ, "LATCH_CREDENTIAL_STORE=auto")
	r := e.run("auth", "login")
	if r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	mustContain(t, "login stderr", r.stderr, "keyring")
	k := latch.Key{Issuer: e.srv.URL, ClientID: "latch-cli"}
	kr := keyring.New("latch")
	first, err := kr.Load(context.Background(), k)
	if err != nil {
		t.Fatalf("the credential is not in the keyring: %v", err)
	}
	r = e.run("auth", "status")
	mustContain(t, "status", r.stdout+r.stderr, "store: keyring")

	e.srv.ExpireAccessTokens()
	if r := e.run("api", "/v2/user"); r.code != 0 {
		t.Fatalf("api after expiry: %v", r)
	}
	rotated, err := kr.Load(context.Background(), k)
	if err != nil || rotated.Generation != first.Generation+1 || rotated.RefreshToken == first.RefreshToken {
		t.Fatalf("keyring after refresh: %+v, %v; want the rotated set", rotated, err)
	}
	if r := e.run("auth", "logout"); r.code != 0 {
		t.Fatalf("logout: %v", r)
	}
	if _, err := kr.Load(context.Background(), k); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("after logout the keyring still answers %v; want not found", err)
	}
}

// needKeyring skips t without a working Secret Service.
func needKeyring(t *testing.T) {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session bus: run under scripts/test.sh for the real Secret Service")
	}
	if h := keyring.Probe(context.Background()); !h.OK {
		t.Skipf("keyring unusable here: %s", h.Message)
	}
}
