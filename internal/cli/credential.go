package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

// maxHelperInput bounds what a credential helper reads from stdin.
const maxHelperInput = 64 << 10

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
	c.AddCommand(a.newGitCredentialCmd(), a.newDockerCredentialCmd(), a.newKubectlCredentialCmd())
	return c
}

// rejectedDir holds one empty file per access token a tool reported as
// rejected (git's erase, docker's erase), named by its fingerprint: the
// next request for a token refreshes instead of handing it out again.
func (a *App) rejectedDir() (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "rejected"), nil
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
	dir, err := a.rejectedDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("remember the rejected token: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, latch.Fingerprint(accessToken)), os.O_CREATE|os.O_WRONLY, 0o600)
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
	dir, err := a.rejectedDir()
	if err != nil {
		return nil, err
	}
	mark := filepath.Join(dir, latch.Fingerprint(tok.AccessToken))
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
	pruneRejected(dir)
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

// helperInput is a credential helper request: git's key=value lines
// (git-credential(1)), up to a blank line or EOF.
type helperInput struct {
	attrs map[string][]string
}

func readHelperInput(r io.Reader) (*helperInput, error) {
	in := &helperInput{attrs: map[string][]string{}}
	if r == nil {
		return in, nil
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxHelperInput))
	sc.Buffer(make([]byte, 0, 4096), maxHelperInput)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("credential input: a line without '=' (git-credential(1) wants key=value)")
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("credential input: %s holds a NUL byte", k)
		}
		in.attrs[k] = append(in.attrs[k], v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credential input: %w", err)
	}
	return in, nil
}

// get returns the last value of key, as git does for single-valued keys.
func (in *helperInput) get(key string) string {
	vs := in.attrs[key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func (in *helperInput) has(key, value string) bool {
	for _, v := range in.attrs[key] {
		if v == value {
			return true
		}
	}
	return false
}

// safeValue reports whether v can be written as a key=value line.
func safeValue(v string) bool { return !strings.ContainsAny(v, "\n\r\x00") }
