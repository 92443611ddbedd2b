package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/fleet"
	"github.com/latchdev/latch/internal/app/settings"
	"github.com/latchdev/latch/keyring"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storeurl"
)

// keyringService is the keyring service name latch's items live under.
const keyringService = settings.KeyringService

// storeChoice is the credential store a command uses and how to describe
// it to a person.
type storeChoice struct {
	store  latch.Store
	kind   string // "keyring", "file", "postgres" or "redis"
	where  string // a fleet store's server, password hidden
	notice string // set when auto mode fell back; shown on stderr
	health string // the keyring's health, for auth status; "" if not probed
	dir    string
}

// describe says where k's credential lives.
func (sc *storeChoice) describe(k latch.Key) string {
	if sc.where != "" {
		return fmt.Sprintf("%s, credential %s", sc.where, k)
	}
	if sc.kind == credstore.KindKeyring {
		return fmt.Sprintf("keyring service %q, item %s", keyringService, keyring.User(k))
	}
	return filestore.New(sc.dir).Path(k)
}

// storeUse says how a command opens its credential store.
type storeUse int

const (
	// storeRecorded: the store asked for, else the kind recorded for the
	// host at login, with no keyring probe (every command but these two).
	storeRecorded storeUse = iota
	// storeProbed: the same, with the keyring's health probed (status).
	storeProbed
	// storeChosen: the store asked for, else chosen afresh with a probe,
	// ignoring the kind recorded at the last login (login).
	storeChosen
	// storeSource: as storeRecorded, for a latch.Source: a fleet store
	// behind this machine's copies (fleet.Cache), opened only when needed.
	storeSource
)

// openStore opens the credential store for host (credstore: keyring when
// it works, else a 0600 file, and says so): --credential-store,
// LATCH_CREDENTIAL_STORE, then as use says.
func (a *App) openStore(ctx context.Context, host string, use storeUse) (*storeChoice, error) {
	raw := a.inputs().Pick("credential-store", EnvStore, "")
	if v, ok := a.flagValue("credential-store"); ok && urlHasPassword(v) {
		if k, ok := storeurl.Lookup(v); ok {
			return nil, usageError(fmt.Errorf("a password in --credential-store is shown to every local user (ps) for as long as latch runs: "+
				"put the URL in %s instead%s", EnvStore, storePasswordPlaces(k)))
		}
	}
	if k, ok := storeurl.Lookup(raw); ok {
		return a.openFleetStore(ctx, k, raw, use == storeSource)
	}
	if use != storeChosen && raw == "" && host != "" {
		if k, ok := storeurl.ByID(a.hostEntry(host).Store); ok {
			return nil, usageError(fmt.Errorf("the credentials for %s are in a %s store: set %s (or --credential-store) to its URL", host, k.ID, EnvStore))
		}
		raw = a.inputs().Store(host)
	}
	mode, err := credstore.ParseMode(raw)
	if err != nil {
		// All five forms; the value itself only when it cannot be a
		// mistyped URL that holds a password.
		what, also := EnvStore, ""
		if _, ok := a.flagValue("credential-store"); ok || a.Getenv(EnvStore) == "" {
			what, also = "--credential-store", " (or set "+EnvStore+")"
		}
		if !strings.ContainsAny(raw, ":@/") {
			what += fmt.Sprintf(" %q", raw)
		}
		return nil, usageError(fmt.Errorf("%s: want auto, keyring, file, %s%s", what, storeurl.Forms(), also))
	}
	return a.openStoreMode(ctx, mode, use == storeProbed || use == storeChosen)
}

// openStoreMode opens the credential store in mode; probe runs the
// keyring's health probe even in keyring mode.
func (a *App) openStoreMode(ctx context.Context, mode credstore.Mode, probe bool) (*storeChoice, error) {
	dir, err := a.configDir()
	if err != nil {
		return nil, err
	}
	c, err := credstore.Open(ctx, credstore.Options{Mode: mode, Dir: dir, Service: keyringService,
		NoProbe:  !probe,
		OnNotice: func(msg string) { fmt.Fprintln(a.Stderr, "latch: "+msg) }})
	var ue *credstore.UnavailableError
	if errors.As(err, &ue) {
		return nil, fmt.Errorf("%w; to keep credentials in a 0600 file instead, pass --credential-store file (or auto) or set %s=file", err, EnvStore)
	}
	if err != nil {
		return nil, err
	}
	sc := &storeChoice{store: c.Store, kind: c.Kind, notice: c.Notice, dir: c.Path}
	if c.Mode != credstore.File {
		sc.health = c.Health.String()
	}
	return sc, nil
}

// urlHasPassword reports whether a store URL carries a password: in its
// user info, or in a query parameter whose name says password (password,
// sslpassword; any case).
func urlHasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return true // cannot tell: treat it as secret
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	for k := range u.Query() {
		if strings.Contains(strings.ToLower(k), "pass") {
			return true
		}
	}
	return false
}

// storeAuthMessage says what to fix when a fleet store refused its
// password.
func storeAuthMessage(err error) (string, bool) {
	var ae *fleet.AuthError
	if !errors.As(err, &ae) {
		return "", false
	}
	var k storeurl.Kind
	for _, kk := range storeurl.Kinds() {
		if kk.Name == ae.Server {
			k = kk
		}
	}
	return oneLine(ae.Error()) + "; fix the password in " + EnvStore + storePasswordPlaces(k), true
}

// storePasswordPlaces names where else k's server password may live.
func storePasswordPlaces(k storeurl.Kind) string {
	if k.PasswordElsewhere == "" {
		return ""
	}
	return ", or leave it out of the URL and use " + k.PasswordElsewhere
}

// fleet reports whether the store is shared by a fleet (a kind a URL
// names: PostgreSQL, Redis).
func (sc *storeChoice) fleet() bool {
	_, ok := storeurl.ByID(sc.kind)
	return ok
}

// openFleetStore opens a store of kind k shared by many machines
// (storeurl: PostgreSQL, Redis). Its tokens are sealed with the key in
// LATCH_STORE_KEY_FILE, unless --insecure-store-plaintext says to store
// them in the clear. cached puts it behind this machine's copies of the
// access tokens (fleet.Cache), opened when a copy does not serve.
func (a *App) openFleetStore(ctx context.Context, k storeurl.Kind, raw string, cached bool) (*storeChoice, error) {
	var key []byte
	switch path := a.Getenv(EnvStoreKeyFile); {
	case path != "":
		var err error
		if key, err = sealed.ReadKeyFile(path); err != nil {
			return nil, usageError(err)
		}
	case !a.flags.plaintextStore:
		return nil, usageError(fmt.Errorf("a %s credential store needs a key to seal tokens with: set %s to a file of 32 random bytes "+
			"(head -c 32 /dev/urandom > latch-store.key && chmod 600 latch-store.key), or pass --insecure-store-plaintext", k.ID, EnvStoreKeyFile))
	}
	opts := storeurl.Options{Key: key, Plaintext: key == nil}
	if cached {
		box, err := sealed.New(key)
		if err != nil {
			return nil, usageError(err)
		}
		dir, err := a.fleetCopies()
		if err != nil {
			return nil, err
		}
		c := &fleet.Cache{Dir: dir, Box: box, Open: func(ctx context.Context) (latch.Store, error) { return k.Open(ctx, raw, opts) }}
		return &storeChoice{kind: k.ID, store: c}, nil
	}
	st, err := k.Open(ctx, raw, opts)
	if err != nil {
		return nil, err
	}
	return &storeChoice{kind: k.ID, store: st, where: st.String()}, nil
}

// fleetCopies is the directory of this machine's copies of a fleet
// store's access tokens and of the machine's refresh locks (fleet.Cache).
func (a *App) fleetCopies() (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "fleet"), nil
}

// forgetCopy removes this machine's copy of k's access token after a
// login or logout replaced k's set in a fleet store, so that no command
// here is handed the set that was replaced.
func (a *App) forgetCopy(sc *storeChoice, k latch.Key) error {
	if !sc.fleet() {
		return nil
	}
	dir, err := a.fleetCopies()
	if err != nil {
		return err
	}
	// No lock: a Load that read the old set meanwhile sees Forget's mark
	// and keeps no copy of it.
	return (&fleet.Cache{Dir: dir}).Forget(k)
}
