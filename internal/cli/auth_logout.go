package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

func (a *App) newLogoutCmd() *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the credential at the server and delete it here",
		Long: `Revoke the refresh token and then the access token at the server
(RFC 7009, best effort), and delete the local credential, which always
happens. Both outcomes are reported. --org picks the organization; --all
logs out of every host and organization in the config file.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && a.flagSet("org") {
				return usageError(errors.New("--org and --all cannot be used together"))
			}
			return a.logout(cmd.Context(), all)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "log out of every host and organization")
	return c
}

type logoutTarget struct{ host, org string }

// revokeTimeout bounds both revocation requests of one logout.
const revokeTimeout = 10 * time.Second

func (a *App) logout(ctx context.Context, all bool) error {
	cf, err := a.config()
	if err != nil {
		return err
	}
	var targets []logoutTarget
	if all {
		for _, h := range cf.HostNames() {
			for _, o := range cf.Hosts[h].Orgs {
				targets = append(targets, logoutTarget{h, o})
			}
		}
		if len(targets) == 0 {
			fmt.Fprintln(a.Stderr, "Not logged in anywhere; nothing to do.")
			return nil
		}
	} else {
		host, err := a.Host()
		if err != nil {
			return err
		}
		targets = append(targets, logoutTarget{host, a.Org(host)})
	}
	var errs []error
	for _, t := range targets {
		if err := a.logoutOne(ctx, t.host, t.org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// logoutOne revokes (RFC 7009 §2.1: refresh token first, which also ends
// its access tokens on most servers, then the access token) and deletes.
func (a *App) logoutOne(ctx context.Context, host, org string) error {
	cfg, cfgErr := a.oauthConfig(ctx, host, false)
	sc, err := a.openStore(ctx, host)
	if err != nil {
		return err
	}
	clientID := a.ClientID(host)
	issuer := host
	if cfgErr == nil {
		issuer = cfg.Issuer
	}
	key := latch.Key{Issuer: issuer, ClientID: clientID, Account: org}
	tok, err := sc.store.Load(ctx, key)
	if errors.Is(err, latch.ErrNotFound) {
		a.forget(host, org)
		fmt.Fprintf(a.Stderr, "Not logged in to %s%s; nothing to remove.\n", host, orgSuffix(org))
		return nil
	}
	if err != nil {
		return fmt.Errorf("log out of %s: %w", host, err)
	}
	name := fmt.Sprintf("%s%s", host, orgSuffix(org))
	// Revocation is best effort and bounded; the local delete below runs
	// even if it times out or the user interrupts it.
	rctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	revoke := func(tokValue, hint string) string {
		switch {
		case tokValue == "":
			return "none held"
		case cfgErr != nil:
			return "not revoked (" + oneLine(cfgErr.Error()) + ")"
		}
		if err := cfg.Revoke(rctx, tokValue, hint); err != nil {
			return "not revoked (" + oneLine(err.Error()) + ")"
		}
		return "revoked"
	}
	rt := revoke(tok.RefreshToken, "refresh_token")
	at := revoke(tok.AccessToken, "access_token")
	fmt.Fprintf(a.Stderr, "Server: refresh token %s; access token %s.\n", rt, at)
	if err := sc.store.Delete(context.WithoutCancel(ctx), key); err != nil {
		return fmt.Errorf("log out of %s: delete local credential: %w", name, err)
	}
	a.forget(host, org)
	fmt.Fprintf(a.Stderr, "Local: credential deleted from the %s store (%s).\n", sc.kind, sc.describe(key))
	fmt.Fprintf(a.Stderr, "Logged out of %s.\n", name)
	return nil
}

// forget drops org from host in the config file; best effort, since the
// credential itself is already gone.
func (a *App) forget(host, org string) {
	cf, err := a.config()
	if err != nil {
		return
	}
	if h := cf.Get(host); h != nil {
		h.RemoveOrg(org)
		_ = cf.Save()
	}
}
