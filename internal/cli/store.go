package cli

import (
	"context"
	"fmt"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/keyring"
)

// keyringService is the keyring service name latch's items live under.
const keyringService = "latch"

// storeChoice is the credential store a command uses and how to describe
// it to a person.
type storeChoice struct {
	store  latch.Store
	kind   string // "keyring" or "file"
	notice string // set when auto mode fell back; shown on stderr
	health string // the keyring's health, for auth status; "" if not probed
	dir    string
}

// describe says where k's credential lives.
func (sc *storeChoice) describe(k latch.Key) string {
	if sc.kind == credstore.KindKeyring {
		return fmt.Sprintf("keyring service %q, item %s", keyringService, keyring.User(k))
	}
	return filestore.New(sc.dir).Path(k)
}

// storeMode returns the requested store: --credential-store,
// LATCH_CREDENTIAL_STORE, then the kind recorded for host at login, so
// that only login and status pay for a keyring probe.
func (a *App) storeMode(host string) (credstore.Mode, error) {
	k := a.pick("credential-store", a.flags.store, EnvStore, "")
	if k == "" && host != "" && !a.chooseStore {
		k = a.hostEntry(host).Store
	}
	m, err := credstore.ParseMode(k)
	if err != nil {
		return "", usageError(err)
	}
	return m, nil
}

// openStore opens the credential store for host (credstore: keyring when
// it works, else a 0600 file, and says so).
func (a *App) openStore(ctx context.Context, host string) (*storeChoice, error) {
	mode, err := a.storeMode(host)
	if err != nil {
		return nil, err
	}
	return a.openStoreMode(ctx, mode, a.probeKeyring)
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
	if err != nil {
		return nil, err
	}
	sc := &storeChoice{store: c.Store, kind: c.Kind, notice: c.Notice, dir: c.Path}
	if c.Mode != credstore.File {
		sc.health = c.Health.String()
	}
	return sc, nil
}
