package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/storekit"
)

// logoutOptions are the flags of `latch auth logout`.
type logoutOptions struct {
	all    bool
	strict bool
}

// newLogoutCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newLogoutCmd(runF func(*logoutOptions) error) *cobra.Command {
	o := &logoutOptions{}
	c := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the credential at the server and delete it here",
		Long: `Delete the local credential, which always happens, and revoke its refresh
and access tokens at the server (RFC 7009, both at once, best effort).
Both outcomes are reported. --org picks the organization; --all logs out
of every host and organization in the config file. With --strict, a
revocation the server did not confirm makes the exit status 1 (the local
credential is still deleted).`,
		Example: `  latch auth logout
  latch auth logout --org acme --strict
  latch auth logout --all`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.all && a.flagSet("org") {
				return usageError(errors.New("--org and --all cannot be used together"))
			}
			if runF != nil {
				return runF(o)
			}
			return a.logout(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&o.all, "all", false, "log out of every host and organization")
	c.Flags().BoolVar(&o.strict, "strict", false, "exit 1 when the server did not confirm a revocation")
	return c
}

// errNotRevoked is --strict's answer to a revocation the server did not
// confirm: the local credential is gone, but a token may still work.
var errNotRevoked = &ExitError{Code: ExitAPI, Err: errors.New("logged out here, but the server did not confirm the revocation (see above): a token may still work until it expires")}

// revokeTimeout bounds the revocation requests of one logout.
const revokeTimeout = 10 * time.Second

func (a *App) logout(ctx context.Context, o *logoutOptions) error {
	if !o.all {
		host, err := a.Host()
		if err != nil {
			return err
		}
		sc, err := a.openStore(ctx, host, storeRecorded)
		if err != nil {
			return err
		}
		return a.logoutOne(ctx, sc, host, a.key(ctx, host, a.Org(host)), o.strict)
	}
	targets, err := a.logoutTargets(ctx)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		fmt.Fprintln(a.Stderr, "Not logged in anywhere; nothing to do.")
		return nil
	}
	var errs []error
	for _, t := range targets {
		if err := a.logoutOne(ctx, t.sc, t.host, t.key, o.strict); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type logoutTarget struct {
	sc   *storeChoice
	host string
	key  latch.Key
}

// logoutTargets finds every credential to remove for --all: those the
// config file names, and every one the stores hold, which a lost config
// write (or another tool) may have left unnamed. Each is removed through
// the store, and so under the lock, that its refreshers use.
func (a *App) logoutTargets(ctx context.Context) ([]logoutTarget, error) {
	cf, err := a.config()
	if err != nil {
		return nil, err
	}
	var out []logoutTarget
	seen := map[latch.Key]bool{}
	add := func(sc *storeChoice, host string, k latch.Key) {
		if !seen[k] {
			seen[k] = true
			out = append(out, logoutTarget{sc, host, k})
		}
	}
	hostOf := func(issuer string) string {
		for _, h := range cf.HostNames() {
			if md := cf.Hosts[h].Metadata; md != nil && config.Normalize(md.Issuer) == issuer {
				return h
			}
		}
		return issuer
	}
	for _, h := range cf.HostNames() {
		sc, err := a.openStore(ctx, h, storeRecorded)
		if err != nil {
			return nil, err
		}
		for _, o := range cf.Hosts[h].Orgs {
			add(sc, h, a.key(ctx, h, o))
		}
	}
	// Then what the stores hold: the file store, and the keyring when it
	// answers (its probe is bounded).
	for _, mode := range []credstore.Mode{credstore.File, credstore.Keyring} {
		sc, err := a.openStoreMode(ctx, mode, mode == credstore.Keyring)
		if err != nil {
			continue // no keyring here: nothing of ours in it
		}
		lister, ok := sc.store.(latch.Lister)
		if !ok {
			continue
		}
		keys, err := lister.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("log out: list %s store: %w", sc.kind, err)
		}
		for _, k := range keys {
			add(sc, hostOf(k.Issuer), k)
		}
	}
	return out, nil
}

// key returns the credential key for host and org: the issuer recorded
// at login (the host itself if none).
func (a *App) key(_ context.Context, host, org string) latch.Key {
	issuer := host
	if md := a.hostEntry(host).Metadata; md != nil {
		issuer = config.Normalize(md.Issuer)
	}
	return latch.Key{Issuer: issuer, ClientID: a.ClientID(host), Account: org}
}

// logoutOne deletes the credential under its lock, so that a refresher
// holding the lock saves first and its rotated set is the one removed
// (no logged-out credential comes back), then revokes both tokens at the
// server concurrently (RFC 7009 §2.1), best effort and bounded; strict
// makes an unconfirmed revocation an error.
func (a *App) logoutOne(ctx context.Context, sc *storeChoice, host string, key latch.Key, strict bool) error {
	name := host + orgSuffix(key.Account)
	var tok *latch.Token
	// The local delete runs even if the user interrupts the command.
	_, err := storekit.Update(context.WithoutCancel(ctx), sc.store, storekit.LockerOf(sc.store), key,
		func(cur *latch.Token) (*latch.Token, error) { tok = cur; return nil, nil })
	if err != nil {
		return fmt.Errorf("log out of %s: delete local credential: %w", name, err)
	}
	if err := a.forgetCopy(sc, key); err != nil {
		return fmt.Errorf("log out of %s: %w", name, err)
	}
	selected := a.hostEntry(host).Org
	a.forget(context.WithoutCancel(ctx), host, key.Account)
	if selected != "" && selected == key.Account {
		defer fmt.Fprintln(a.Stderr, a.selectedNow(host, key.Account))
	}
	if tok == nil {
		fmt.Fprintf(a.Stderr, "Not logged in to %s; nothing to remove.\n", name)
		return nil
	}
	fmt.Fprintf(a.Stderr, "Local: credential deleted from the %s store (%s).\n", sc.kind, sc.describe(key))

	cfg, cfgErr := a.oauthConfig(ctx, host)
	if cfgErr == nil && tok.ClientSecret != "" {
		cfg.ClientSecret = tok.ClientSecret // RFC 7009 §2.1: the client authenticates
	}
	rctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	var failed atomic.Bool
	revoke := func(tokValue, hint string) string {
		switch {
		case tokValue == "":
			return "none held"
		case cfgErr != nil:
			failed.Store(true)
			return "not revoked (" + oneLine(cfgErr.Error()) + ")"
		}
		if err := cfg.Revoke(rctx, tokValue, hint); err != nil {
			failed.Store(true)
			return "not revoked (" + oneLine(err.Error()) + ")"
		}
		return "revoked"
	}
	var rt, at string
	var wg sync.WaitGroup
	wg.Go(func() { rt = revoke(tok.RefreshToken, "refresh_token") })
	wg.Go(func() { at = revoke(tok.AccessToken, "access_token") })
	wg.Wait()
	fmt.Fprintf(a.Stderr, "Server: refresh token %s; access token %s.\n", rt, at)
	fmt.Fprintf(a.Stderr, "Logged out of %s.\n", name)
	if strict && failed.Load() {
		return errNotRevoked
	}
	return nil
}

// selectedNow says what is selected on host after the selected org was
// logged out of.
func (a *App) selectedNow(host, gone string) string {
	var others []string
	defaultIn := false
	for _, o := range a.hostEntry(host).Orgs {
		if o == "" {
			defaultIn = true
		} else {
			others = append(others, o)
		}
	}
	msg := fmt.Sprintf("Org %s was the selected one on %s; ", gone, host)
	switch {
	case defaultIn:
		msg += "the default account is selected now"
	case len(others) > 0:
		return msg + "no org is selected now: pick one with latch auth switch ORG (" + strings.Join(others, ", ") + ")."
	default:
		return msg + "nothing is logged in there now."
	}
	if len(others) > 0 {
		msg += " (latch auth switch ORG for " + strings.Join(others, ", ") + ")"
	}
	return msg + "."
}

// forget drops org from host in the config file; best effort, since the
// credential itself is already gone.
func (a *App) forget(ctx context.Context, host, org string) {
	_ = a.updateConfig(ctx, func(cf *config.File) error {
		if h := cf.Get(host); h != nil {
			h.RemoveOrg(org)
		}
		return nil
	})
}
