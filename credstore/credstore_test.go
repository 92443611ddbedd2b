package credstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/keyring"
	"github.com/latchdev/latch/storekit"
)

var (
	ctx = context.Background()
	key = latch.Key{Issuer: "https://issuer.example", ClientID: "cli", Account: "acme"}
)

func token(at string) *latch.Token {
	return &latch.Token{AccessToken: at, RefreshToken: "rt-" + at, Issuer: key.Issuer, ClientID: key.ClientID, Account: key.Account}
}

// mustWork checks the chosen store saves for real, locks and lists.
func mustWork(t *testing.T, c *Choice) {
	t.Helper()
	if err := storekit.Put(ctx, c.Store, key, token("a1")); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := c.Store.Load(ctx, key)
	if err != nil || got.AccessToken != "a1" {
		t.Fatalf("Load: got %+v, %v", got, err)
	}
	if err := c.Store.(latch.WriteChecker).CheckWrite(ctx, key, 0); err != nil {
		t.Fatalf("CheckWrite: %v", err)
	}
	unlock, err := c.Store.(latch.Locker).Lock(ctx, key)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	unlock()
	if keys, err := c.Store.(latch.Lister).List(ctx); err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("List: got %v, %v", keys, err)
	}
}

func TestFileMode(t *testing.T) {
	noKeyring(t) // file mode must not need, or wait for, a keyring
	dir := t.TempDir()
	c, err := Open(ctx, Options{Mode: File, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindFile || c.Fallback || c.Notice != "" || c.Path != dir {
		t.Fatalf("got %+v, want a plain file choice", c)
	}
	mustWork(t, c)
	if _, err := os.Stat(filestore.New(dir).Path(key)); err != nil {
		t.Fatalf("credential file: %v", err)
	}
}

// The library reads no environment: the program names its mode, its
// directory and its service; the defaults are Auto and the user's config
// directory joined with the service.
func TestDefaultsReadNoEnvironment(t *testing.T) {
	noKeyring(t)
	t.Setenv("LATCH_CREDENTIAL_STORE", "file")
	t.Setenv("LATCH_CONFIG_DIR", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	c, err := Open(ctx, Options{Service: "my-cli"})
	if err != nil || c.Mode != Auto || c.Path != filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "my-cli") {
		t.Fatalf("defaults: got %+v, %v; want auto in $XDG_CONFIG_HOME/my-cli", c, err)
	}
	if _, err := Open(ctx, Options{Mode: "vault", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), `"vault"`) {
		t.Fatalf("mode vault: got %v, want an error naming it", err)
	}
}

// TestRealKeyringNoStaleCopy uses the real Secret Service: after a Save in
// one store, the other holds no copy of the credential.
func TestRealKeyringNoStaleCopy(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session bus: run inside `dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets; go test ...'`")
	}
	dir := t.TempDir()
	service := fmt.Sprintf("latch-test-%d", rand.Uint64())
	kr := keyring.New(service)
	t.Cleanup(func() { _ = kr.Remove(ctx, key) })
	fs := filestore.New(dir)

	auto, err := Open(ctx, Options{Dir: dir, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	if auto.Kind != KindKeyring || auto.Fallback || !auto.Health.OK {
		t.Fatalf("got %+v, want the keyring", auto)
	}
	// A stale file copy from an earlier file-mode login.
	if err := storekit.Put(ctx, fs, key, token("stale-file")); err != nil {
		t.Fatal(err)
	}
	mustWork(t, auto)
	if _, err := fs.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("file copy after keyring Save: got %v, want ErrNotFound", err)
	}
	if got, err := kr.Load(ctx, key); err != nil || got.AccessToken != "a1" {
		t.Fatalf("keyring item: got %+v, %v", got, err)
	}

	file, err := Open(ctx, Options{Dir: dir, Service: service, Mode: File})
	if err != nil {
		t.Fatal(err)
	}
	if err := storekit.Put(ctx, file.Store, key, token("f2")); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("keyring copy after file Save: got %v, want ErrNotFound", err)
	}
	if got, err := file.Store.Load(ctx, key); err != nil || got.AccessToken != "f2" {
		t.Fatalf("file Load: got %+v, %v", got, err)
	}
	cur, _ := auto.Store.Load(ctx, key)
	if err := auto.Store.Delete(ctx, key, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := auto.Store.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("after Delete: got %v, want ErrNotFound", err)
	}
}

// TestRealKeyringTooLarge: a set too large for the keyring goes to the
// file store, announced, and the old keyring item does not shadow it.
func TestRealKeyringTooLarge(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session bus: run inside `dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets; go test ...'`")
	}
	dir := t.TempDir()
	service := fmt.Sprintf("latch-test-%d", rand.Uint64())
	var notices []string
	c, err := Open(ctx, Options{Dir: dir, Service: service, OnNotice: func(m string) { notices = append(notices, m) }})
	if err != nil || c.Kind != KindKeyring {
		t.Fatalf("got %+v, %v; want the keyring", c, err)
	}
	s := c.Store.(*Store)
	s.kr.MaxSize = 2560 // as on Windows
	t.Cleanup(func() {
		_, _ = storekit.Update(ctx, s, s, key, func(*latch.Token) (*latch.Token, error) { return nil, nil })
	})
	if err := storekit.Put(ctx, s, key, token("small")); err != nil {
		t.Fatal(err)
	}
	large := strings.Repeat("L", 4000)
	if err := storekit.Put(ctx, s, key, token(large)); err != nil {
		t.Fatalf("Save too large: %v", err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "too large for the keyring") || strings.Contains(notices[0], large) {
		t.Fatalf("notices: got %q, want one announcement without the token", notices)
	}
	if got, err := s.Load(ctx, key); err != nil || got.AccessToken != large {
		t.Fatalf("Load after overflow: got %v; want the large set", err)
	}
	if _, err := s.kr.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("stale keyring item: got %v, want ErrNotFound", err)
	}
	if err := storekit.Put(ctx, s, key, token("small-again")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.fs.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("stale file copy: got %v, want ErrNotFound", err)
	}
	if got, err := s.Load(ctx, key); err != nil || got.AccessToken != "small-again" {
		t.Fatalf("Load: got %+v, %v", got, err)
	}
}

// TestNoProbe: a command after a keyring login skips the probe; a keyring
// that has since gone away shows up as an error on use, not as a
// silent fallback or a hang.
func TestNoProbe(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	c, err := Open(ctx, Options{Mode: Keyring, Dir: t.TempDir(), NoProbe: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if c.Kind != KindKeyring || c.Health != (keyring.Health{}) {
		t.Fatalf("got kind %q health %+v; want keyring, no probe", c.Kind, c.Health)
	}
	if _, err := c.Store.Load(ctx, key); err == nil || errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Load with no bus: got %v, want a keyring error", err)
	}
	// Without NoProbe the same keyring mode refuses at once, with the reason.
	if _, err := Open(ctx, Options{Mode: Keyring, Dir: t.TempDir()}); !errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("Open with the probe: got %v, want ErrStoreUnavailable", err)
	}
}
