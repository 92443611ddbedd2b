package cli

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/clientcreds"
	"github.com/latchdev/latch/exchange"
	"github.com/latchdev/latch/internal/app/config"
)

// Workload logins: `auth login --grant client-credentials` and
// `--grant token-exchange` log a program in with no person and no
// stored secret of latch's own. The answer has no refresh token; every
// later command renews it with the same grant under the credential's
// lock (latch.Source.Regrant), reading the key or subject token again
// from where the login was told it is.

// GitHub Actions' variables for the job's OIDC token (`permissions:
// id-token: write`).
const (
	envActionsURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envActionsToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// maxKeyFile bounds a private key file.
const maxKeyFile = 64 << 10

// workloadFlags are the flags of the workload grants.
type workloadFlags struct {
	grant            string // client-credentials, token-exchange or ""
	privateKeyFile   string
	keyID            string
	subjectTokenFile string
	subjectTokenType string
	subjectAudience  string
	githubActions    bool
}

func (o *loginOptions) addWorkloadFlags(c interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	c.StringVar(&o.work.grant, "grant", "", "log a program in with no browser: client-credentials (RFC 6749 §4.4) or token-exchange (RFC 8693), renewed by every command since it has no refresh token; authorization-code is a person's login again")
	c.StringVar(&o.work.privateKeyFile, "private-key-file", "", "client credentials: authenticate with a JWT signed by this PEM private `FILE` (RFC 7523 private_key_jwt) instead of a secret")
	c.StringVar(&o.work.keyID, "key-id", "", "the kid of --private-key-file's key, as registered with the server")
	c.StringVar(&o.work.subjectTokenFile, "subject-token-file", "", "token exchange: the subject token's `FILE` (a Kubernetes service-account token, a CI job's OIDC token), read again at every renewal")
	c.StringVar(&o.work.subjectTokenType, "subject-token-type", "", "the subject token's type: jwt (default), id_token, access_token, or an RFC 8693 URN")
	c.BoolVar(&o.work.githubActions, "github-actions", false, "token exchange: fetch the GitHub Actions job's OIDC token from the runner (needs `permissions: id-token: write`)")
	c.StringVar(&o.work.subjectAudience, "subject-audience", "", "with --github-actions: the audience of the job's OIDC token (default: the authorization server)")
}

// workloadGrant checks the workload flags against the others and
// returns the grant to remember: nil for a person's login. Flags left
// out keep what the host remembers.
func (o *loginOptions) workloadGrant(h *config.Host, clientID, org string) (*config.Grant, error) {
	w := o.work
	name := w.grant
	switch {
	case name == "" && (w.subjectTokenFile != "" || w.githubActions):
		name = "token-exchange"
	case name == "" && w.privateKeyFile != "":
		name = "client-credentials"
	case name == "" || name == "authorization-code":
		for flag, set := range map[string]bool{"--key-id": w.keyID != "", "--subject-token-type": w.subjectTokenType != "",
			"--subject-audience": w.subjectAudience != "", "--private-key-file": w.privateKeyFile != "",
			"--subject-token-file": w.subjectTokenFile != "", "--github-actions": w.githubActions} {
			if set {
				return nil, usageError(fmt.Errorf("%s is for a program's login (--grant client-credentials or token-exchange), not a person's", flag))
			}
		}
		if name == "" && h.Grant.For(clientID, org) && !o.device && !o.withToken && !o.noBrowser {
			g := *h.Grant // a re-login of a workload renews it the same way
			return &g, nil
		}
		return nil, nil // a person's login; it forgets this login's remembered grant
	}
	g := &config.Grant{}
	switch name {
	case "client-credentials", config.GrantClientCredentials:
		g.Type = config.GrantClientCredentials
	case "token-exchange", config.GrantTokenExchange:
		g.Type = config.GrantTokenExchange
	default:
		return nil, usageError(fmt.Errorf("--grant %q: want client-credentials, token-exchange or authorization-code (a person's browser login)", name))
	}
	if o.device || o.withToken || o.noBrowser {
		return nil, usageError(errors.New("--grant is a login without a person; it cannot be used with --device, --with-token or --no-browser"))
	}
	if o.redirectURI != "" {
		return nil, usageError(errors.New("--redirect-uri is for the browser login; --grant uses no redirect"))
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	switch g.Type {
	case config.GrantClientCredentials:
		if w.subjectTokenFile != "" || w.githubActions || w.subjectTokenType != "" || w.subjectAudience != "" {
			return nil, usageError(errors.New("--subject-token-file, --github-actions, --subject-token-type and --subject-audience are for --grant token-exchange"))
		}
		if w.privateKeyFile != "" {
			g.PrivateKeyFile, g.KeyID = abs(w.privateKeyFile), w.keyID
		} else if w.keyID != "" {
			return nil, usageError(errors.New("--key-id names the key of --private-key-file"))
		}
	case config.GrantTokenExchange:
		if w.privateKeyFile != "" || w.keyID != "" {
			return nil, usageError(errors.New("--private-key-file and --key-id are for --grant client-credentials"))
		}
		switch {
		case w.subjectTokenFile != "" && w.githubActions:
			return nil, usageError(errors.New("--subject-token-file and --github-actions both name a subject token; use one"))
		case w.subjectTokenFile == "" && !w.githubActions:
			return nil, usageError(errors.New("--grant token-exchange needs the subject token: --subject-token-file FILE or --github-actions"))
		case w.subjectAudience != "" && !w.githubActions:
			return nil, usageError(errors.New("--subject-audience is the audience of --github-actions' token"))
		}
		if w.subjectTokenFile != "" {
			g.SubjectTokenFile = abs(w.subjectTokenFile)
		}
		g.GitHubActions, g.SubjectAudience = w.githubActions, w.subjectAudience
		typ, err := subjectTokenType(w.subjectTokenType)
		if err != nil {
			return nil, err
		}
		g.SubjectTokenType = typ
	}
	g.ClientID, g.Org = clientID, org
	return g, nil
}

// subjectTokenType maps --subject-token-type to an RFC 8693 §3 URN.
func subjectTokenType(s string) (string, error) {
	switch s {
	case "", "jwt":
		return exchange.JWT, nil
	case "id_token", "id-token":
		return exchange.IDToken, nil
	case "access_token", "access-token":
		return exchange.AccessToken, nil
	}
	if strings.HasPrefix(s, "urn:") && !strings.ContainsAny(s, " \t\r\n") {
		return s, nil
	}
	return "", usageError(fmt.Errorf("--subject-token-type %q: want jwt, id_token, access_token or an RFC 8693 token type URN", s))
}

// workloadToken runs g's grant once with cfg; stored is the set it
// renews (its client secret), nil at login.
func (a *App) workloadToken(ctx context.Context, cfg *latch.Config, g *config.Grant, stored *latch.Token) (*latch.Token, error) {
	if stored != nil && cfg.ClientSecret == "" && stored.ClientSecret != "" && cfg.Endpoint.AuthStyle != latch.AuthStyleNone {
		c := *cfg
		c.ClientSecret = stored.ClientSecret
		cfg = &c
	}
	switch g.Type {
	case config.GrantClientCredentials:
		var key *clientcreds.Key
		if g.PrivateKeyFile != "" {
			signer, err := readPrivateKey(g.PrivateKeyFile)
			if err != nil {
				return nil, err
			}
			key = &clientcreds.Key{Signer: signer, ID: g.KeyID}
		} else if cfg.ClientSecret == "" {
			return nil, usageError(fmt.Errorf("the client credentials grant needs the client to authenticate: pass --private-key-file, --client-secret-file or set %s", EnvClientSecret))
		}
		return clientcreds.Token(ctx, cfg, key)
	case config.GrantTokenExchange:
		sub, err := a.subjectToken(ctx, cfg, g)
		if err != nil {
			return nil, err
		}
		return exchange.Token(ctx, cfg, exchange.Request{SubjectToken: sub, SubjectTokenType: g.SubjectTokenType})
	}
	return nil, usageError(fmt.Errorf("the login remembers an unknown grant %q: log in again with --grant", g.Type))
}

// subjectToken reads g's subject token: its file, or the runner's
// answer. A file that is missing, empty, huge or holds an expired token
// is a usage error (exit 2) that names the file.
func (a *App) subjectToken(ctx context.Context, cfg *latch.Config, g *config.Grant) (string, error) {
	if !g.GitHubActions {
		tok, err := exchange.ReadFile(g.SubjectTokenFile, time.Now())
		if err != nil {
			return "", usageError(err)
		}
		return tok, nil
	}
	aud := g.SubjectAudience
	if aud == "" {
		aud = cfg.Issuer
	}
	if a.Getenv(envActionsURL) == "" || a.Getenv(envActionsToken) == "" {
		return "", usageError(fmt.Errorf("--github-actions: %s and %s are not set: run in a GitHub Actions job with `permissions: id-token: write`", envActionsURL, envActionsToken))
	}
	// Not through --debug's log: the runner's answer is the token itself.
	tok, err := exchange.GitHubActions(ctx, &http.Client{Transport: &uaTransport{base: http.DefaultTransport, ua: userAgent()}},
		a.Getenv(envActionsURL), a.Getenv(envActionsToken), aud)
	var re *exchange.RunnerError
	switch {
	case errors.As(err, &re) && (re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500):
		return "", &ExitError{Code: ExitTransient, Err: err}
	case errors.As(err, &re):
		return "", usageError(fmt.Errorf("%w; check the job's `permissions: id-token: write`", err))
	case err != nil:
		return "", err
	}
	return tok, nil
}

// readPrivateKey reads a PEM private key file, refusing one that others
// can read (as ssh does) and never quoting it.
func readPrivateKey(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError(fmt.Errorf("--private-key-file: %w", err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, usageError(fmt.Errorf("private key file %s can be read by others (mode %#o): run `chmod 600 %s` (for a Kubernetes Secret volume, set defaultMode: 0400)", path, fi.Mode().Perm(), path))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, usageError(fmt.Errorf("--private-key-file %s: %w", path, err))
	}
	if len(b) > maxKeyFile {
		return nil, usageError(fmt.Errorf("private key file %s is larger than %d KiB: not a key", path, maxKeyFile>>10))
	}
	k, err := clientcreds.ParseKey(b)
	if err != nil {
		return nil, usageError(fmt.Errorf("private key file %s: %w", path, err))
	}
	return k, nil
}

// regrant is the Source's Regrant for host's workload login.
func (a *App) regrant(cfg *latch.Config, g *config.Grant) func(context.Context, *latch.Token) (*latch.Token, error) {
	return func(ctx context.Context, stored *latch.Token) (*latch.Token, error) {
		return a.workloadToken(ctx, cfg, g, stored)
	}
}

// workloadHint is the login-required hint of a workload login: what to
// check, and the login that starts over.
func workloadHint(g *config.Grant) string {
	switch {
	case g.Type == config.GrantClientCredentials && g.PrivateKeyFile != "":
		return "check that the server still knows the key in " + g.PrivateKeyFile + ", or run `latch auth login --grant client-credentials` again"
	case g.Type == config.GrantClientCredentials:
		return "check the client secret, or run `latch auth login --grant client-credentials` again"
	case g.GitHubActions:
		return "check that the server trusts this repository's GitHub Actions tokens, or run `latch auth login --github-actions` again"
	}
	return "check the subject token in " + g.SubjectTokenFile + " and whether the server trusts its issuer, or run `latch auth login --subject-token-file` again"
}

// refusedAtLogin reports whether err is the server refusing a workload
// grant at login: a setting to fix (exit 2), not a failure to retry.
func refusedAtLogin(err error) bool {
	var te *latch.TokenError
	var ee *ExitError
	return !errors.As(err, &ee) && errors.As(err, &te) && te.StatusCode != http.StatusTooManyRequests && te.StatusCode < 500 &&
		te.Code != "server_error" && te.Code != "temporarily_unavailable"
}

func grantName(g *config.Grant) string {
	if g.Type == config.GrantTokenExchange {
		return "token exchange (RFC 8693)"
	}
	return "client credentials (RFC 6749 §4.4)"
}

// grantInputs names what a renewal reads again.
func grantInputs(g *config.Grant) string {
	switch {
	case g.PrivateKeyFile != "":
		return "the key in " + g.PrivateKeyFile
	case g.Type == config.GrantClientCredentials:
		return "nothing (the client secret is stored with the credential)"
	case g.GitHubActions:
		return "the job's OIDC token from the GitHub Actions runner"
	}
	return "the subject token in " + g.SubjectTokenFile
}
