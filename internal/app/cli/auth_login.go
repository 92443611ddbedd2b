package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/identity"
	"github.com/latchdev/latch/register"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
)

// maxTokenInput bounds what --with-token reads from stdin.
const maxTokenInput = 1 << 20

// loginOptions are the flags of `auth login`.
type loginOptions struct {
	device, withToken bool
	// keepReplaced keeps the refresh token of the session a login
	// replaces valid at the server (servers such as Google revoke the
	// whole grant, the new login's too, when one token is revoked).
	keepReplaced bool
	// force replaces a fleet store's credential this machine's store key
	// cannot open.
	force   bool
	timeout time.Duration

	// Login settings, remembered for the host; unset flags reuse the
	// host's remembered ones.
	scopes    []string
	params    []string // key=value
	audience  string
	resources []string
	endpoints config.Endpoints
	// clientAuth is basic, post or none; the secret comes from
	// LATCH_CLIENT_SECRET or secretFile, never from a flag's value.
	clientAuth  string
	secretFile  string
	redirectURI string
	// registrationURL is the RFC 7591 endpoint, for a server whose
	// metadata does not name it (Hydra).
	registrationURL string
}

// newLoginCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newLoginCmd(runF func(*loginOptions) error) *cobra.Command {
	var o loginOptions
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

The endpoints come from the host's RFC 8414 or OIDC discovery document;
--auth-url, --token-url, --device-url and --revocation-url override them,
and with --token-url and --auth-url (or --device-url) no discovery is
needed. --scopes, --param, --audience, --resource and the endpoints are
remembered for the host, so later logins and commands need only --host.

The credential is bound to the host's issuer, the client ID and --org.`,
		Example: `  latch auth login --host https://auth.example.com
  latch auth login --device
  latch auth login --scopes read:jira-work,offline_access --audience api.atlassian.com
  latch auth login --host https://github.com --auth-url https://github.com/login/oauth/authorize \
      --token-url https://github.com/login/oauth/access_token
  echo "$TOKEN_JSON" | latch auth login --with-token`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.device && o.withToken {
				return usageError(errors.New("--device and --with-token cannot be used together"))
			}
			if runF != nil {
				return runF(&o)
			}
			a.loggingIn = true
			return a.login(cmd.Context(), cmd, &o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.device, "device", false, "log in with a code shown here and entered on another device (RFC 8628)")
	f.BoolVar(&o.withToken, "with-token", false, "read a token or a token-response JSON from stdin")
	f.BoolVar(&o.keepReplaced, "keep-replaced", false, "do not revoke the refresh token of the session this login replaces (for servers that revoke the whole grant, as Google does)")
	f.BoolVar(&o.force, "force", false, "replace a fleet store's credential that this machine's store key cannot open (the other machines then need this key)")
	f.DurationVar(&o.timeout, "timeout", authcode.DefaultTimeout, "how long to wait for the browser or device approval")
	f.StringSliceVar(&o.scopes, "scopes", nil, "scopes to ask for, comma-separated or repeated (default: openid and offline_access, as far as the server lists them)")
	f.StringArrayVar(&o.params, "param", nil, "extra authorization and token request parameter KEY=VALUE (repeatable)")
	f.StringVar(&o.audience, "audience", "", "the API to ask a token for, as Auth0 and Atlassian name it (same as --param audience=VALUE)")
	f.StringArrayVar(&o.resources, "resource", nil, "resource indicator URL (RFC 8707; repeatable)")
	f.StringVar(&o.endpoints.AuthURL, "auth-url", "", "authorization endpoint URL, for a server without discovery")
	f.StringVar(&o.endpoints.TokenURL, "token-url", "", "token endpoint URL, for a server without discovery")
	f.StringVar(&o.endpoints.DeviceURL, "device-url", "", "device authorization endpoint URL (RFC 8628)")
	f.StringVar(&o.endpoints.RevocationURL, "revocation-url", "", "revocation endpoint URL (RFC 7009)")
	f.StringVar(&o.endpoints.UserinfoURL, "userinfo-url", "", "userinfo endpoint URL (OIDC Core §5.3): who is logged in, and where --with-token is checked")
	f.StringVar(&o.endpoints.ValidateURL, "validate-url", "", "where --with-token checks the token when the host has no userinfo endpoint: a `URL`, or a path on the API URL such as /user")
	f.StringVar(&o.secretFile, "client-secret-file", "", "read the client secret from this `FILE` (or set "+EnvClientSecret+"); it is stored with the credential")
	f.StringVar(&o.redirectURI, "redirect-uri", "", "the exact loopback redirect `URI` the client is registered with, e.g. http://127.0.0.1:8765/callback or http://localhost:8765/cb")
	f.StringVar(&o.registrationURL, "registration-url", "", "dynamic client registration endpoint (RFC 7591), when the metadata names none; used when no client ID is configured")
	f.StringVar(&o.clientAuth, "client-auth", "", "how the client authenticates: basic, post or none (default: from the server's metadata)")
	return c
}

// clientSecret reads the secret from --client-secret-file or
// LATCH_CLIENT_SECRET, else from where the host's last login was given it
// (h.ClientSecretFrom: the file's path, never the secret; a variable is
// read only when set). It returns the secret and where it came from; ""
// when there is none.
func (a *App) clientSecret(o *loginOptions, h *config.Host) (secret, from string, err error) {
	env := a.Getenv(EnvClientSecret)
	file := o.secretFile
	switch {
	case file != "" && env != "":
		return "", "", usageError(fmt.Errorf("--client-secret-file and %s are both set; use one", EnvClientSecret))
	case env != "":
		return strings.TrimSpace(env), "env:" + EnvClientSecret, nil
	case file == "" && strings.HasPrefix(h.ClientSecretFrom, "file:"):
		file = strings.TrimPrefix(h.ClientSecretFrom, "file:")
	}
	if file == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", usageError(fmt.Errorf("--client-secret-file: %w", err))
	}
	sec := strings.TrimSpace(string(b))
	if sec == "" || strings.ContainsAny(sec, "\r\n") {
		return "", "", usageError(fmt.Errorf("--client-secret-file %s: want one line holding the secret", file))
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return sec, "file:" + file, nil
}

// clientAuthMethod picks the one way the client authenticates: as asked,
// as remembered, or from the server's list (RFC 6749 §2.3.1 makes Basic
// the one every server supports).
func (o *loginOptions) clientAuthMethod(cmd *cobra.Command, h *config.Host, secret string, supported []string) (string, error) {
	method := h.ClientAuth
	if cmd.Flags().Changed("client-auth") {
		switch o.clientAuth {
		case "basic":
			method = authBasic
		case "post":
			method = authPost
		case "none":
			method = authNone
		default:
			return "", usageError(fmt.Errorf("--client-auth %q: want basic, post or none", o.clientAuth))
		}
	}
	switch {
	case method == authNone && secret != "":
		return "", usageError(errors.New("--client-auth none with a client secret: a public client sends no secret"))
	case method != "" && method != authNone:
		if secret == "" {
			return "", usageError(fmt.Errorf("client authentication %s needs the client secret: set %s or pass --client-secret-file", method, EnvClientSecret))
		}
		return method, nil
	case method == authNone || secret == "":
		return method, nil
	case len(supported) > 0 && !slices.Contains(supported, authBasic) && slices.Contains(supported, authPost):
		return authPost, nil
	}
	return authBasic, nil
}

// settings merges the login flags with what is remembered for host.
func (o *loginOptions) settings(cmd *cobra.Command, h *config.Host) (scopes []string, params url.Values, e config.Endpoints, err error) {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	scopes = h.Scopes
	if changed("scopes") {
		scopes = []string{} // --scopes '' asks for none: not the defaults
		for _, sc := range o.scopes {
			if sc = strings.TrimSpace(sc); sc != "" {
				scopes = append(scopes, sc)
			}
		}
	}
	params = url.Values{}
	for k, vs := range h.Params {
		params[k] = vs
	}
	if changed("param") || changed("audience") || changed("resource") {
		params = url.Values{}
		for _, p := range o.params {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, nil, e, usageError(fmt.Errorf("--param %q: want KEY=VALUE", p))
			}
			switch k {
			case "client_id", "client_secret", "redirect_uri", "state", "code_challenge", "code_challenge_method",
				"response_type", "grant_type", "code", "code_verifier", "refresh_token", "scope":
				return nil, nil, e, usageError(fmt.Errorf("--param %s: latch sets this parameter itself%s", k, scopeHint(k)))
			}
			params.Add(k, v)
		}
		if o.audience != "" {
			params.Set("audience", o.audience)
		}
		for _, r := range o.resources {
			if err := discovery.CheckURL(r); err != nil {
				return nil, nil, e, usageError(fmt.Errorf("--resource: %w", err))
			}
			params.Add("resource", r)
		}
	}
	if h.Endpoints != nil {
		e = *h.Endpoints
	}
	for _, f := range []struct {
		flag string
		dst  *string
		v    string
	}{
		{"auth-url", &e.AuthURL, o.endpoints.AuthURL},
		{"token-url", &e.TokenURL, o.endpoints.TokenURL},
		{"device-url", &e.DeviceURL, o.endpoints.DeviceURL},
		{"revocation-url", &e.RevocationURL, o.endpoints.RevocationURL},
		{"userinfo-url", &e.UserinfoURL, o.endpoints.UserinfoURL},
		{"validate-url", &e.ValidateURL, o.endpoints.ValidateURL},
	} {
		if !changed(f.flag) {
			continue
		}
		// A --validate-url path is on the API URL, checked when used.
		isPath := f.flag == "validate-url" && strings.HasPrefix(f.v, "/")
		if f.v != "" && !isPath {
			if err := discovery.CheckURL(f.v); err != nil {
				return nil, nil, e, usageError(fmt.Errorf("--%s: %w", f.flag, err))
			}
		}
		*f.dst = f.v
	}
	return scopes, params, e, nil
}

func scopeHint(k string) string {
	if k == "scope" {
		return "; use --scopes"
	}
	return ""
}

// loginConfig finds the host's endpoints (discovery, unless the explicit
// ones suffice), with the explicit endpoints over them, and the scopes:
// as given, or openid and offline_access as far as the server lists them.
func (a *App) loginConfig(ctx context.Context, host, server string, scopes []string, params url.Values, e config.Endpoints) (*latch.Config, *discovery.Metadata, []string, error) {
	var md *discovery.Metadata
	var supported, methods []string
	if e.TokenURL != "" && (e.AuthURL != "" || e.DeviceURL != "") {
		md = &discovery.Metadata{Issuer: server}
	} else {
		m, err := discovery.Fetch(ctx, &http.Client{Transport: a.baseTransport()}, server)
		var se *discovery.StatusError
		var me *discovery.MetadataError
		switch {
		case errors.As(err, &me) && me.Field == "issuer" && me.Issuer != "" && discovery.CheckURL(me.Issuer) == nil:
			return nil, nil, nil, usageError(fmt.Errorf("%w; did you mean --host %s?", err, me.Issuer))
		case errors.As(err, &me), errors.As(err, &se) && se.StatusCode < 500:
			// Trying again cannot help: a person must name the endpoints.
			return nil, nil, nil, usageError(fmt.Errorf("%w; for a server without discovery, pass --auth-url and --token-url", err))
		case err != nil:
			return nil, nil, nil, err
		}
		md, supported, methods = m, m.ScopesSupported, m.TokenEndpointAuthMethodsSupported
	}
	for _, p := range []struct {
		dst *string
		v   string
	}{
		{&md.AuthorizationEndpoint, e.AuthURL}, {&md.TokenEndpoint, e.TokenURL},
		{&md.DeviceAuthorizationEndpoint, e.DeviceURL}, {&md.RevocationEndpoint, e.RevocationURL},
		{&md.UserinfoEndpoint, e.UserinfoURL},
	} {
		if p.v != "" {
			*p.dst = p.v
		}
	}
	if scopes == nil {
		scopes = defaultScopes
		if len(supported) > 0 {
			scopes = nil
			for _, sc := range defaultScopes {
				if slices.Contains(supported, sc) {
					scopes = append(scopes, sc)
				}
			}
		}
	}
	cfg, err := a.clientConfig(host, md, scopes, params)
	if err == nil && cfg.Scopes == nil {
		cfg.Scopes = []string{} // none asked for, and so remembered
	}
	return cfg, md, methods, err
}

// loginPlan is what a login was asked to do, checked before the person
// is asked for anything.
type loginPlan struct {
	// host names the login's config entry: the authorization server, or
	// for a login made for a resource (RFC 9728) the resource, whose
	// authorization server is server.
	host, server, org string
	resource          string // the resource a zero-config login is for
	cfg               *latch.Config
	md                *discovery.Metadata
	params            url.Values
	endpoints         config.Endpoints
	method            string // client authentication
	redirectURI       string
	reg               *config.Registration
	input             *latch.Token // --with-token's token
	secret            string
	secretFrom        string // where the secret was given: file:PATH or env:NAME
}

// login runs `latch auth login`: plan, obtain a token, check it, store
// it under the credential's lock, remember the host's settings, report.
func (a *App) login(ctx context.Context, cmd *cobra.Command, o *loginOptions) error {
	p, err := a.planLogin(ctx, cmd, o)
	if err != nil {
		return err
	}
	sc, err := a.openStore(ctx, p.host, storeChosen)
	if err != nil {
		return err
	}
	if sc.notice != "" {
		fmt.Fprintln(a.Stderr, sc.notice)
	}
	// Before the browser: refuse early what the save would refuse.
	if sc.fleet() && !o.force {
		k := latch.Key{Issuer: p.cfg.Issuer, ClientID: p.cfg.ClientID, Account: p.org}
		_, loadErr := sc.store.Load(ctx, k)
		if err := a.refuseUnopenable(sc, k, loadErr); err != nil {
			return err
		}
	}
	tok, err := a.obtainToken(ctx, o, p)
	if err != nil {
		return err
	}
	tok.Issuer, tok.ClientID, tok.Account, tok.ClientSecret = p.cfg.Issuer, p.cfg.ClientID, p.org, p.cfg.ClientSecret
	// A refreshable token at or near its expiry is refreshed by the first
	// command anyway (latch.DefaultSkew); checking it says nothing.
	checked, expired := "", o.withToken && tok.Expired(time.Now().Add(latch.DefaultSkew))
	switch {
	case expired && tok.Refreshable():
	case o.withToken:
		// A token the server refuses is not stored (it would only fail
		// later, far from where it was pasted).
		if checked, err = a.checkToken(ctx, p.host, p.md, p.endpoints, tok); err != nil {
			return err
		}
	default:
		tok.User = a.whoIs(ctx, p.cfg, p.md, p.endpoints, tok)
	}
	if tok.Lineage == "" {
		tok.Lineage = storekit.NewLineage()
	}
	// Under the credential's lock, like every write: a refresher of the
	// old session that holds it saves first, and is then replaced; one
	// that comes after sees a new login and adopts it.
	replaced, unopenable, err := a.saveLogin(context.WithoutCancel(ctx), sc, tok, o.force)
	if err != nil {
		return err
	}
	if replaced != nil && (!replaced.Expired(time.Now()) || replaced.Refreshable()) {
		who := ""
		if replaced.User != "" {
			who = " as " + replaced.User
		}
		fmt.Fprintf(a.Stderr, "This replaces the live login for %s%s%s (token %s).\n", p.host, orgSuffix(p.org), who, mask(replaced.AccessToken))
	}
	if unopenable {
		fmt.Fprintln(a.Stderr, "latch: replaced a stored credential that this store key cannot open; it could not be read, so it was not revoked (revoke it at the server if it may still be used)")
	}
	settings := config.Host{Scopes: p.cfg.Scopes, Params: p.params, Metadata: p.md, ClientAuth: p.method, RedirectURI: p.redirectURI, Registration: p.reg}
	if p.cfg.ClientSecret != "" {
		settings.ClientSecretFrom = p.secretFrom
	}
	if p.server != p.host {
		settings.AuthServer = p.server
	}
	settings.Resource = p.resource
	if p.endpoints != (config.Endpoints{}) {
		settings.Endpoints = &p.endpoints
	}
	if err := a.remember(context.WithoutCancel(ctx), p.host, p.cfg, p.org, sc.kind, settings); err != nil {
		return err
	}
	a.printLoggedIn(p, sc, tok, o.withToken, checked, expired)
	return a.revokeReplaced(ctx, p, replaced, tok, o.keepReplaced || a.hostEntry(p.host).KeepReplaced)
}

// revokeReplaced revokes the refresh token of the session a login
// replaced (RFC 7009), now that the new set is saved: it would otherwise
// stay valid at the server, held by no one. Best effort, and said. Some
// servers (Google) revoke the whole grant, the new login's too: where the
// server has a userinfo endpoint the new token is checked after the
// revocation, and if the server now refuses it, latch says so, keeps
// replaced sessions for this host from then on, and exits 4.
func (a *App) revokeReplaced(ctx context.Context, p *loginPlan, old, tok *latch.Token, keep bool) error {
	if old == nil || old.RefreshToken == "" || old.RefreshToken == tok.RefreshToken {
		return nil
	}
	switch {
	case keep:
		fmt.Fprintln(a.Stderr, "The replaced session's refresh token was kept at the server (--keep-replaced).")
		return nil
	case p.cfg.RevocationURL == "":
		fmt.Fprintln(a.Stderr, "The replaced session's refresh token could not be revoked: the server has no revocation endpoint (RFC 7009); it stays valid there until it expires.")
		return nil
	}
	c := *p.cfg
	if c.ClientSecret == "" {
		c.ClientSecret = old.ClientSecret
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	if err := c.Revoke(rctx, old.RefreshToken, "refresh_token"); err != nil {
		fmt.Fprintf(a.Stderr, "The replaced session's refresh token was not revoked (%s); it stays valid at the server until it expires.\n", oneLine(err.Error()))
		return nil
	}
	if p.md.UserinfoEndpoint != "" {
		_, err := identity.Userinfo(rctx, &http.Client{Transport: a.baseTransport()}, p.md.UserinfoEndpoint, tok.AccessToken)
		var re *identity.RejectedError
		if errors.As(err, &re) {
			_ = a.updateConfig(context.WithoutCancel(ctx), func(cf *config.File) error {
				cf.Ensure(p.host).KeepReplaced = true
				return nil
			})
			return &ExitError{Code: ExitAuth, Err: fmt.Errorf("revoking the replaced session's refresh token revoked this login too (the server revokes whole grants, as Google does); latch keeps replaced sessions for %s from now on: run `latch auth login` again", p.host)}
		}
	}
	fmt.Fprintln(a.Stderr, "Revoked the replaced session's refresh token at the server (RFC 7009); --keep-replaced keeps it.")
	return nil
}

// planLogin checks the login's flags and input and finds the server's
// endpoints and client, registering one when asked; p.cfg is ready to use.
func (a *App) planLogin(ctx context.Context, cmd *cobra.Command, o *loginOptions) (*loginPlan, error) {
	named, err := a.hostFromResource(ctx, o)
	if err != nil {
		return nil, err
	}
	host, err := a.Host()
	if errors.Is(err, errNoHost) {
		return nil, usageError(errors.New("no host to log in to: pass --host URL (the authorization server) or set " + EnvHost + ", or --resource URL for an API that names its server (RFC 9728)"))
	}
	if err != nil {
		return nil, err
	}
	p := &loginPlan{host: host, server: a.authServer(host), resource: a.hostEntry(host).Resource, org: a.Org(host)}
	if named != "" {
		p.server, p.resource = named, host
	}
	server := p.server
	var scopes []string
	if scopes, p.params, p.endpoints, err = o.settings(cmd, a.hostEntry(host)); err != nil {
		return nil, err
	}
	// Read stdin before any network call, so bad input fails fast.
	if o.withToken {
		if p.input, err = readTokenInput(a.Stdin); err != nil {
			return nil, usageError(fmt.Errorf("--with-token: %w", err))
		}
	}
	if o.timeout <= 0 {
		return nil, usageError(errors.New("--timeout must be positive"))
	}
	if p.secret, p.secretFrom, err = a.clientSecret(o, a.hostEntry(host)); err != nil {
		return nil, err
	}
	if named != "" && p.secretFrom != "" && !a.clientNamed(host) {
		// The user named no server and no client for this secret: it
		// must not go to whatever server a resource named (LESSONS 26).
		return nil, usageError(fmt.Errorf("a client secret was given (%s) for no client: the authorization server %s was named by the resource, not by you; pass --client-id with the client the secret belongs to",
			secretOrigin(p.secretFrom), named))
	}
	var methods []string
	if p.cfg, p.md, methods, err = a.loginConfig(ctx, host, server, scopes, p.params, p.endpoints); err != nil {
		return nil, err
	}
	if p.reg, err = a.registerClient(ctx, cmd, o, host, p.cfg, p.md, p.secretFrom); err != nil {
		return nil, err
	}
	if other := a.sharedWith(host, p.cfg.Key(p.org)); other != "" {
		return nil, usageError(fmt.Errorf("this login would share its credential with the login for %s (the same authorization server, client and account); add --org NAME to keep them apart, or log out of %s first",
			other, other))
	}
	if p.method, err = o.clientAuthMethod(cmd, a.hostEntry(host), p.secret, methods); err != nil {
		return nil, err
	}
	if p.reg != nil {
		p.method = authNone
	}
	for _, f := range []struct{ name, v string }{{"api-url", a.flags.apiURL}, {"graphql-url", a.flags.graphqlURL}} {
		if a.flagSet(f.name) {
			if err := discovery.CheckURL(f.v); err != nil {
				return nil, usageError(fmt.Errorf("--%s: %w", f.name, err))
			}
		}
	}
	p.redirectURI = a.hostEntry(host).RedirectURI
	if cmd.Flags().Changed("redirect-uri") {
		p.redirectURI = o.redirectURI
	}
	if p.redirectURI != "" {
		if _, _, _, err := authcode.ParseRedirectURI(p.redirectURI); err != nil {
			return nil, usageError(fmt.Errorf("--redirect-uri: %w", err))
		}
	}
	p.cfg.Endpoint.AuthStyle = authStyle(p.method)
	if p.method != authNone {
		p.cfg.ClientSecret = p.secret
	}
	return p, nil
}

// obtainToken gets the token set: the pasted one, by the device grant or
// by the browser. An error that a login setting must fix is exit 2.
func (a *App) obtainToken(ctx context.Context, o *loginOptions, p *loginPlan) (*latch.Token, error) {
	var tok *latch.Token
	var err error
	switch {
	case o.withToken:
		tok = p.input
	case o.device:
		tok, err = a.deviceLogin(ctx, p.cfg, o.timeout)
	default:
		waiting := fmt.Sprintf("Waiting up to %s for the browser to come back to latch (Ctrl-C to cancel; use --device on a machine without a browser)...", o.timeout)
		tok, err = authcode.Login(ctx, p.cfg, authcode.Options{OpenURL: a.browserOpener(waiting), Timeout: o.timeout, RedirectURI: p.redirectURI})
		if errors.Is(err, authcode.ErrTimeout) {
			a.printTimeoutCauses(p.cfg, p.redirectURI)
			err = fmt.Errorf("%w; the likely causes are listed above", err)
		}
	}
	var ae *authcode.AuthorizeError
	if errors.As(err, &ae) && ae.Code != "access_denied" && ae.Code != "server_error" && ae.Code != "temporarily_unavailable" {
		// invalid_request, invalid_scope, unauthorized_client…: a login
		// setting to fix (RFC 6749 §4.1.2.1), exit 2.
		return nil, usageError(fmt.Errorf("%w; check --scopes, --audience, --resource and --param for what the server asks", err))
	}
	var te *latch.TokenError
	if errors.As(err, &te) && (te.Code == "invalid_client" || te.Code == "unauthorized_client" || te.Code == "incorrect_client_credentials" ||
		te.Code == "invalid_client_id" || te.Code == "bad_client_secret") {
		// The client, not the person: a setting to fix (exit 2).
		return nil, usageError(fmt.Errorf("%w; check the client ID (--client-id %s), its secret (%s or --client-secret-file) and --client-auth basic|post|none", err, p.cfg.ClientID, EnvClientSecret))
	}
	return tok, err
}

// printLoggedIn tells the person what was stored where, and for how long.
func (a *App) printLoggedIn(p *loginPlan, sc *storeChoice, tok *latch.Token, withToken bool, checked string, expired bool) {
	now := time.Now()
	as := ""
	if tok.User != "" {
		as = " as " + tok.User
	}
	fmt.Fprintf(a.Stderr, "Logged in to %s%s with client %s%s.\n", p.cfg.Issuer, as, p.cfg.ClientID, orgSuffix(p.org))
	if withToken {
		switch {
		case checked != "":
			fmt.Fprintf(a.Stderr, "The token was checked at %s and accepted.\n", checked)
		case expired && tok.Refreshable():
			fmt.Fprintln(a.Stderr, "The access token has expired or is about to, so it was not checked; the first command refreshes it.")
		default:
			fmt.Fprintln(a.Stderr, "The token was NOT checked: the host has no userinfo endpoint. Pass --userinfo-url or --validate-url PATH to check it before it is stored.")
		}
	}
	fmt.Fprintf(a.Stderr, "Credential stored in the %s store: %s\n", sc.kind, sc.describe(tok.Key()))
	fmt.Fprintf(a.Stderr, "Access token expires: %s\n", when(tok.Expiry, now))
	if tok.Refreshable() {
		if !tok.RefreshExpiry.IsZero() {
			fmt.Fprintf(a.Stderr, "Refresh token expires: %s\n", when(tok.RefreshExpiry, now))
		}
		fmt.Fprintln(a.Stderr, "latch refreshes the access token by itself; no need to log in again while the refresh token lasts.")
	} else if withToken {
		fmt.Fprintln(a.Stderr, "No refresh token was issued: log in again when the access token expires.")
	} else {
		fmt.Fprintln(a.Stderr, noRefreshAdvice(p.cfg.Issuer, p.cfg.Scopes, p.params))
	}
}

// noRefreshAdvice says what to change when a login got no refresh token.
// Google answers a login without access_type=offline with none, no
// error, and without prompt=consent only at the first consent; most other
// servers want the offline_access scope (OIDC Core §11).
func noRefreshAdvice(issuer string, scopes []string, params url.Values) string {
	const google = "add access_type=offline and prompt=consent (--param access_type=offline --param prompt=consent)"
	const later = "; log in again when the access token expires"
	if u, err := url.Parse(issuer); err == nil && u.Hostname() == "accounts.google.com" {
		return "No refresh token: " + google + later + "."
	}
	switch {
	case params.Get("access_type") == "offline":
		return "No refresh token was issued" + later + "."
	case !slices.Contains(scopes, "offline_access"):
		return "No refresh token was issued: ask for the offline_access scope (--scopes), or, for Google, " + google + later + "."
	}
	return "No refresh token was issued, though offline_access was asked for; for Google, " + google + later + "."
}

// remember records the login in the config file and selects it.
func (a *App) remember(ctx context.Context, host string, cfg *latch.Config, org, kind string, settings config.Host) error {
	err := a.updateConfig(ctx, func(cf *config.File) error {
		h := cf.Ensure(host)
		h.AuthServer, h.Resource = settings.AuthServer, settings.Resource
		if h.Resource != "" && !a.flagSet("api-url") {
			h.APIURL = h.Resource // the API the login was made for
		}
		h.ClientID = cfg.ClientID
		if cfg.ClientID == DefaultClient {
			h.ClientID = ""
		}
		h.AddOrg(org)
		h.Org = org
		h.Store = kind
		h.Metadata = settings.Metadata
		h.Scopes, h.Params, h.Endpoints = settings.Scopes, settings.Params, settings.Endpoints
		h.ClientAuth, h.RedirectURI, h.ClientSecretFrom = settings.ClientAuth, settings.RedirectURI, settings.ClientSecretFrom
		if settings.Registration != nil {
			h.Registration = settings.Registration
		}
		// --api-url and --graphql-url given to login are the host's from
		// now on (GitHub's API is not on github.com).
		if a.flagSet("api-url") {
			h.APIURL = strings.TrimSuffix(a.flags.apiURL, "/")
		}
		if a.flagSet("graphql-url") {
			h.GraphQLURL = a.flags.graphqlURL
		}
		if len(h.Params) == 0 {
			h.Params = nil
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

// printTimeoutCauses says what is likely wrong when the browser never
// came back: a server that cannot redirect shows an error page and stops.
func (a *App) printTimeoutCauses(cfg *latch.Config, redirectURI string) {
	ru := "http://127.0.0.1:PORT/callback (any port, RFC 8252 §7.3)"
	if redirectURI != "" {
		ru = redirectURI
	}
	fmt.Fprintf(a.Stderr, "The browser never came back to latch. If it showed an error page from the server, check that:\n"+
		"  - the client ID %q is registered there (--client-id), as a public or native app;\n"+
		"  - its registered redirect URI is %s; else pass the registered one with --redirect-uri;\n"+
		"  - the scopes %q are allowed for it (--scopes), and any audience or resource it needs is given (--audience, --resource).\n"+
		"If no browser opened, open the URL above yourself, or log in with --device.\n", cfg.ClientID, ru, strings.Join(cfg.Scopes, " "))
}

// hostFromResource handles --resource without --host (zero
// configuration): the resource's protected resource metadata names its
// authorization server (RFC 9728 §3). The login is then the resource's:
// its config entry is named by the resource, which becomes its API, and
// the authorization server is returned. It returns "" when --host or
// LATCH_HOST names the server (the resource is then a plain RFC 8707
// indicator for it) or no --resource is given.
func (a *App) hostFromResource(ctx context.Context, o *loginOptions) (string, error) {
	if len(o.resources) == 0 || a.flagSet("host") || a.Getenv(EnvHost) != "" {
		return "", nil
	}
	r := o.resources[0]
	if err := discovery.CheckURL(r); err != nil {
		return "", usageError(fmt.Errorf("--resource: %w", err))
	}
	m, err := discovery.FetchResource(ctx, &http.Client{Transport: a.baseTransport()}, r)
	var se *discovery.StatusError
	var me *discovery.MetadataError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		hint := ""
		if cf, cerr := a.config(); cerr == nil && cf.Host != "" {
			hint = fmt.Sprintf("; to send it as an RFC 8707 resource indicator to the selected host instead: latch auth login --host %s --resource %s", quoteArg(cf.Host), quoteArg(r))
		}
		return "", usageError(fmt.Errorf("%w; the resource publishes no protected resource metadata (RFC 9728), so pass --host with its authorization server%s", err, hint))
	case errors.As(err, &me), errors.As(err, &se) && se.StatusCode < 500:
		return "", usageError(fmt.Errorf("%w; pass --host with the resource's authorization server", err))
	case err != nil:
		return "", err
	}
	as := config.Normalize(m.AuthorizationServers[0])
	fmt.Fprintf(a.Stderr, "The resource %s names its authorization server: %s (RFC 9728).\n", r, as)
	if err := a.root.PersistentFlags().Set("host", config.Normalize(r)); err != nil {
		return "", err
	}
	return as, nil
}

// registerClient registers latch as a public client (RFC 7591) when no
// client ID is configured and the server has a registration endpoint (or
// --registration-url names one). The client is remembered for the host
// and reused by every later login. It returns nil when it did not register.
func (a *App) registerClient(ctx context.Context, cmd *cobra.Command, o *loginOptions, host string, cfg *latch.Config, md *discovery.Metadata, secretFrom string) (*config.Registration, error) {
	endpoint := md.RegistrationEndpoint
	if cmd.Flags().Changed("registration-url") {
		if err := discovery.CheckURL(o.registrationURL); err != nil {
			return nil, usageError(fmt.Errorf("--registration-url: %w", err))
		}
		endpoint = o.registrationURL
	}
	if endpoint == "" || a.clientNamed(host) || o.withToken {
		return nil, nil
	}
	if secretFrom != "" {
		// A secret belongs to the client it was issued with; a client
		// latch registers is public and carries none (LESSONS 26).
		return nil, usageError(fmt.Errorf("a client secret was given (%s) but no client: latch would register a public client at %s, which carries no secret; pass --client-id with the client the secret belongs to",
			secretOrigin(secretFrom), endpoint))
	}
	redirect := "http://127.0.0.1" + authcode.CallbackPath // any port (RFC 8252 §7.3)
	if o.redirectURI != "" {
		redirect = o.redirectURI
	} else if h := a.hostEntry(host); h.RedirectURI != "" {
		redirect = h.RedirectURI
	}
	grants := []string{"authorization_code", "refresh_token"}
	if o.device {
		grants = []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}
	}
	c, err := register.Register(ctx, &http.Client{Transport: a.baseTransport()}, endpoint, register.Request{
		ClientName: "latch", SoftwareID: "github.com/latchdev/latch", ApplicationType: "native",
		RedirectURIs: []string{redirect}, GrantTypes: grants, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: authNone, Scope: strings.Join(cfg.Scopes, " "),
	})
	var re *register.Error
	switch {
	case errors.As(err, &re) && re.StatusCode < 500:
		return nil, usageError(fmt.Errorf("%w; pass --client-id with a client registered for latch", err))
	case err != nil:
		return nil, err
	case c.ClientSecret != "" && c.TokenEndpointAuthMethod != authNone:
		return nil, usageError(fmt.Errorf("the server registered a confidential client (%s) though latch asked for a public one; pass --client-id with a public client", c.TokenEndpointAuthMethod))
	}
	cfg.ClientID = c.ClientID
	fmt.Fprintf(a.Stderr, "Registered latch with the server as client %s (RFC 7591); later logins reuse it.\n", c.ClientID)
	reg := &config.Registration{Endpoint: endpoint, ClientID: c.ClientID}
	if c.ClientIDIssuedAt > 0 {
		reg.IssuedAt = time.Unix(c.ClientIDIssuedAt, 0).UTC()
	}
	return reg, nil
}

// sharedWith names another config entry whose login is stored under k:
// two resources behind one authorization server, logged in to with one
// client, would otherwise share one credential, and the second login would
// replace the first.
func (a *App) sharedWith(host string, k latch.Key) string {
	cf, err := a.config()
	if err != nil {
		return ""
	}
	for _, name := range cf.HostNames() {
		h := cf.Get(name)
		if name == config.Normalize(host) || h.Metadata == nil || config.Normalize(h.Metadata.Issuer) != k.Issuer || !slices.Contains(h.Orgs, k.Account) {
			continue
		}
		if id := cmp.Or(h.ClientID, DefaultClient); id == k.ClientID {
			return name
		}
	}
	return ""
}

// clientNamed reports whether a client ID is configured for host (flag,
// environment or config), rather than latch's default.
func (a *App) clientNamed(host string) bool {
	return a.flagSet("client-id") || a.Getenv(EnvClientID) != "" || a.hostEntry(host).ClientID != ""
}

// authServer returns the authorization server of host's login: the one
// a resource named at login (RFC 9728), else host itself.
func (a *App) authServer(host string) string {
	if s := a.hostEntry(host).AuthServer; s != "" {
		return s
	}
	return host
}

// secretOrigin names where a secret was given, for a message.
func secretOrigin(from string) string {
	if f, ok := strings.CutPrefix(from, "file:"); ok {
		return "--client-secret-file " + f
	}
	return strings.TrimPrefix(from, "env:")
}

// whoIs names who tok was issued to: from its id_token, verified against
// the issuer's keys, else from the userinfo endpoint; "" when neither
// says. It never fails a login: the name is for display only, and a
// warning says why it is missing when something was wrong.
func (a *App) whoIs(ctx context.Context, cfg *latch.Config, md *discovery.Metadata, e config.Endpoints, tok *latch.Token) string {
	hc := &http.Client{Transport: a.baseTransport()}
	if tok.IDToken != "" && md.JWKSURI != "" {
		iss := cfg.Issuer
		if md.IssuerTemplate != "" {
			iss = md.IssuerTemplate // Entra ID multi-tenant: iss carries the tid
		}
		c, err := identity.VerifyIDToken(ctx, hc, tok.IDToken, iss, cfg.ClientID, md.JWKSURI, time.Now())
		if err == nil {
			return c.Display()
		}
		fmt.Fprintf(a.Stderr, "warning: %v; the account is not taken from it\n", err)
	}
	if md.UserinfoEndpoint != "" {
		c, err := identity.Userinfo(ctx, hc, md.UserinfoEndpoint, tok.AccessToken)
		if err == nil {
			return c.Display()
		}
		fmt.Fprintf(a.Stderr, "warning: userinfo: %v\n", err)
	}
	if e.ValidateURL != "" {
		u, err := a.validateURL(ctx, e.ValidateURL)
		if err == nil {
			c, err := identity.Check(ctx, hc, u, tok.AccessToken)
			if err == nil && c != nil {
				return c.Display()
			}
		}
	}
	return ""
}

// validateURL resolves --validate-url: a path is on the API URL.
func (a *App) validateURL(ctx context.Context, v string) (string, error) {
	if !strings.HasPrefix(v, "/") {
		return v, nil
	}
	base, err := a.APIURL(ctx)
	if err != nil {
		return "", err
	}
	return base + v, nil
}

// checkToken checks a pasted token before it is stored: at the userinfo
// endpoint when there is one (OIDC Core §5.3), else at --validate-url. It
// returns where it checked, or "" when there was nowhere to.
func (a *App) checkToken(ctx context.Context, host string, md *discovery.Metadata, e config.Endpoints, tok *latch.Token) (string, error) {
	hc := &http.Client{Transport: a.baseTransport()}
	var u string
	var err error
	switch {
	case md.UserinfoEndpoint != "":
		u = md.UserinfoEndpoint
		var c *identity.Claims
		if c, err = identity.Userinfo(ctx, hc, u, tok.AccessToken); err == nil {
			tok.User = c.Display()
		}
	case e.ValidateURL != "":
		if u, err = a.validateURL(ctx, e.ValidateURL); err != nil {
			return "", err
		}
		var c *identity.Claims
		if c, err = identity.Check(ctx, hc, u, tok.AccessToken); err == nil && c != nil {
			tok.User = c.Display()
		}
	default:
		return "", nil
	}
	var re *identity.RejectedError
	switch {
	case errors.As(err, &re):
		return "", &ExitError{Code: ExitAuth, Err: fmt.Errorf("--with-token: %w; it was not stored", err)}
	case err != nil:
		return "", fmt.Errorf("--with-token: could not check the token (%w); it was not stored: try again", err)
	}
	return u, nil
}

// saveLogin stores a login's set under the credential's lock, replacing
// whatever is stored, as storekit.Put does, except a fleet store's set that
// this machine's key cannot open (the other machines seal with another
// key, and would all be logged out): that is refused unless force, and
// replaced reports it.
func (a *App) saveLogin(ctx context.Context, sc *storeChoice, tok *latch.Token, force bool) (replaced *latch.Token, unopenable bool, err error) {
	k := tok.Key()
	lk := storekit.LockerOf(sc.store)
	if lk == nil {
		return nil, false, fmt.Errorf("save credential: %w", latch.ErrNoLocker)
	}
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		return nil, false, fmt.Errorf("save credential: %w", err)
	}
	defer unlock()
	cur, err := sc.store.Load(ctx, k)
	var oe *sealed.OpenError
	switch {
	case errors.As(err, &oe) && sc.fleet():
		if !force {
			return nil, false, a.refuseUnopenable(sc, k, err)
		}
		cur, unopenable = nil, true
	case errors.Is(err, latch.ErrNotFound), errors.Is(err, latch.ErrUnusable):
		cur = nil
	case err != nil:
		return nil, false, fmt.Errorf("save credential: %w", err)
	}
	next, err := latch.Bind(k, tok)
	if err != nil {
		return nil, false, fmt.Errorf("save credential: %w", err)
	}
	if err := sc.store.Save(ctx, k, cur, next); err != nil {
		return nil, false, fmt.Errorf("save credential: %w", err)
	}
	if err := a.forgetCopy(sc, k); err != nil {
		return nil, false, fmt.Errorf("save credential: %w", err)
	}
	return cur, unopenable, nil
}

// refuseUnopenable is the usage error for a login over a fleet store's
// credential that loadErr says this machine's key cannot open; nil for
// any other outcome of the load.
func (a *App) refuseUnopenable(sc *storeChoice, k latch.Key, loadErr error) error {
	var oe *sealed.OpenError
	if !errors.As(loadErr, &oe) || !sc.fleet() {
		return nil
	}
	keyFile := a.Getenv(EnvStoreKeyFile)
	if keyFile == "" {
		keyFile = "(none: --insecure-store-plaintext)"
	}
	return usageError(fmt.Errorf("the %s store holds a credential for %s%s that the store key %s=%s cannot open (%s): "+
		"the other machines seal it with another key, and replacing it would log them all out. "+
		"Set %s to the fleet's key file, or pass --force to replace it", sc.kind, k.Issuer, orgSuffix(k.Account), EnvStoreKeyFile, keyFile, oe.Reason, EnvStoreKeyFile))
}
