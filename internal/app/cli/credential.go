package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/gitcred"
	"github.com/latchdev/latch/internal/app/settings"
)

// maxHelperInput bounds what a credential helper reads from stdin.
const maxHelperInput = gitcred.MaxInput

func (a *App) newCredentialCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "credential",
		Short: "Credential helpers: give git, docker and kubectl a fresh token",
		Long: `Credential helpers that other programs run to get the access token of
your latch login, refreshed first when needed, through the same refresh
transaction as every latch command: a hundred parallel git fetches still
spend the refresh token once. Set them up with latch auth setup-git,
setup-docker and setup-kubectl.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.newGitCredentialCmd(nil), a.newDockerCredentialCmd(), a.newKubectlCredentialCmd(nil))
	return c
}

// markRejected remembers that a tool's server refused accessToken, when
// it is the one stored now; it never refreshes by itself.
func (a *App) markRejected(ctx context.Context, accessToken string) error {
	if accessToken == "" || a.StaticToken() {
		return nil
	}
	src, sc, err := a.storedSource(ctx)
	if err != nil {
		return err
	}
	tok, err := sc.store.Load(ctx, src.Key)
	if err != nil || tok.AccessToken != accessToken {
		return nil // already replaced, or no login: nothing to remember
	}
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(settings.RejectedDir(dir), 0o700); err != nil {
		return fmt.Errorf("remember the rejected token: %w", err)
	}
	f, err := os.OpenFile(settings.RejectedMark(dir, accessToken), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("remember the rejected token: %w", err)
	}
	return f.Close()
}

// helperToken returns a valid token for a credential helper: as every
// command gets it, except that a token a tool reported as rejected is
// replaced first, through the compare-after-lock refresh (latch.Source.Refresh).
func (a *App) helperToken(ctx context.Context) (*latch.Token, error) {
	if a.StaticToken() {
		return a.freshToken(ctx)
	}
	src, _, err := a.storedSource(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := a.configDir()
	if err != nil {
		return nil, err
	}
	mark := settings.RejectedMark(dir, tok.AccessToken)
	if _, err := os.Stat(mark); err != nil {
		return tok, nil
	}
	fresh, err := src.Refresh(ctx, tok)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(mark); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("forget the rejected token: %w", err)
	}
	pruneRejected(settings.RejectedDir(dir))
	return fresh, nil
}

// pruneRejected removes marks older than a day: their tokens have long
// expired or been replaced.
func pruneRejected(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// tokenDestination is the one rule for every path that hands a token out
// for a URL or sends it there (git's and Docker's helpers, setup-git, the
// API URL): https, or plain http to loopback only (RFC 8252 §8.3), as
// discovery.CheckURL decides (LESSONS 30).
func tokenDestination(what, u string) error {
	if err := discovery.CheckURL(u); err != nil {
		if scheme, _, ok := strings.Cut(u, "://"); !ok || scheme != "https" && scheme != "http" {
			// Not "must be https": http is fine on loopback. The URL
			// itself is not shown: it may hold a password.
			return usageError(fmt.Errorf("%s: want an https:// URL (http:// only on a loopback address)", what))
		}
		return usageError(fmt.Errorf("%s: %w; latch hands a token out only over https, or plain http on loopback", what, err))
	}
	return nil
}
