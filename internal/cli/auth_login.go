package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/internal/config"
)

// maxTokenInput bounds what --with-token reads from stdin.
const maxTokenInput = 1 << 20

func (a *App) newLoginCmd() *cobra.Command {
	var useDevice, withToken bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "login",
		Short: "Log in to the host and store a credential that refreshes itself",
		Long: `Log in to the host with the authorization code flow and PKCE on a loopback
redirect (RFC 8252, RFC 7636). The URL is printed and opened with $BROWSER
when set, otherwise the system opener.

  --device      use the device authorization grant (RFC 8628) instead
  --with-token  read a bare access token, or a token-response JSON with
                access_token, refresh_token, expires_in and token_type, from
                stdin; with a refresh token the credential refreshes itself

The credential is bound to the host's issuer, the client ID and --org.`,
		Example: `  latch auth login --host https://auth.example.com
  latch auth login --device
  echo "$TOKEN_JSON" | latch auth login --with-token`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if useDevice && withToken {
				return usageError(errors.New("--device and --with-token cannot be used together"))
			}
			return a.login(cmd.Context(), useDevice, withToken, timeout)
		},
	}
	f := c.Flags()
	f.BoolVar(&useDevice, "device", false, "log in with a code shown here and entered on another device (RFC 8628)")
	f.BoolVar(&withToken, "with-token", false, "read a token or a token-response JSON from stdin")
	f.DurationVar(&timeout, "timeout", authcode.DefaultTimeout, "how long to wait for the browser or device approval")
	return c
}

func (a *App) login(ctx context.Context, useDevice, withToken bool, timeout time.Duration) error {
	host, err := a.Host()
	if err != nil {
		return err
	}
	org := a.Org(host)
	// Read stdin before any network call, so bad input fails fast.
	var input *latch.Token
	if withToken {
		if input, err = readTokenInput(a.Stdin); err != nil {
			return usageError(fmt.Errorf("--with-token: %w", err))
		}
	}
	if timeout <= 0 {
		return usageError(errors.New("--timeout must be positive"))
	}
	cfg, err := a.oauthConfig(ctx, host, true)
	if err != nil {
		return err
	}
	a.chooseStore, a.probeKeyring = true, true
	sc, err := a.openStore(ctx, host)
	if err != nil {
		return err
	}
	if sc.notice != "" {
		fmt.Fprintln(a.Stderr, sc.notice)
	}

	var tok *latch.Token
	switch {
	case withToken:
		tok = input
	case useDevice:
		tok, err = a.deviceLogin(ctx, cfg, timeout)
	default:
		tok, err = authcode.Login(ctx, cfg, authcode.Options{OpenURL: a.openURL, Timeout: timeout})
	}
	if err != nil {
		return err
	}
	tok.Issuer, tok.ClientID, tok.Account = cfg.Issuer, cfg.ClientID, org
	if tok.Lineage == "" {
		tok.Lineage = latch.NewLineage()
	}
	key := tok.Key()
	// Under the credential's lock, like every write: a refresher of the
	// old session that holds it saves first, and is then replaced; one
	// that comes after sees a new login and adopts it.
	if err := latch.Put(context.WithoutCancel(ctx), sc.store, key, tok); err != nil {
		return fmt.Errorf("save credential: %w", err)
	}
	if err := a.remember(context.WithoutCancel(ctx), host, cfg, org, sc.kind); err != nil {
		return err
	}

	now := time.Now()
	fmt.Fprintf(a.Stderr, "Logged in to %s with client %s%s.\n", cfg.Issuer, cfg.ClientID, orgSuffix(org))
	fmt.Fprintf(a.Stderr, "Credential stored in the %s store: %s\n", sc.kind, sc.describe(key))
	fmt.Fprintf(a.Stderr, "Access token expires: %s\n", when(tok.Expiry, now))
	if tok.Refreshable() {
		if !tok.RefreshExpiry.IsZero() {
			fmt.Fprintf(a.Stderr, "Refresh token expires: %s\n", when(tok.RefreshExpiry, now))
		}
		fmt.Fprintln(a.Stderr, "latch refreshes the access token by itself; no need to log in again while the refresh token lasts.")
	} else {
		fmt.Fprintln(a.Stderr, "No refresh token was issued: log in again when the access token expires.")
	}
	return nil
}

// remember records the login in the config file and selects it.
func (a *App) remember(ctx context.Context, host string, cfg *latch.Config, org, kind string) error {
	err := a.updateConfig(ctx, func(cf *config.File) error {
		h := cf.Ensure(host)
		h.ClientID = cfg.ClientID
		if cfg.ClientID == DefaultClient {
			h.ClientID = ""
		}
		h.AddOrg(org)
		h.Org = org
		h.Store = kind
		h.Metadata = &config.Metadata{
			Issuer:                      cfg.Issuer,
			AuthorizationEndpoint:       cfg.Endpoint.AuthURL,
			TokenEndpoint:               cfg.Endpoint.TokenURL,
			DeviceAuthorizationEndpoint: cfg.Endpoint.DeviceAuthURL,
			RevocationEndpoint:          cfg.RevocationURL,
		}
		cf.Host = host
		return nil
	})
	if err != nil {
		return fmt.Errorf("credential saved, but %w", err)
	}
	return nil
}

// readTokenInput parses a bare access token or a token-response JSON.
// Errors never quote the input: it holds secrets.
func readTokenInput(r io.Reader) (*latch.Token, error) {
	if r == nil {
		return nil, errors.New("no input on stdin")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenInput+1))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(b) > maxTokenInput {
		return nil, errors.New("input larger than 1 MiB")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("no token on stdin")
	}
	now := time.Now()
	if b[0] != '{' {
		s := string(b)
		if strings.ContainsAny(s, " \t\r\n") || !isTokenChars(s) {
			return nil, errors.New("input is neither one bare token nor a JSON object")
		}
		return &latch.Token{AccessToken: s, TokenType: "Bearer", IssuedAt: now}, nil
	}
	t, err := latch.ParseTokenResponse(b, now)
	if err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	return t, nil
}

// isTokenChars reports whether s uses only RFC 6750 §2.1 b64token
// characters, so a pasted error page is not stored as a token.
func isTokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/=", c) >= 0:
		default:
			return false
		}
	}
	return true
}
