package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/identity"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
)

// maxTokenInput bounds what --with-token reads from stdin.
const maxTokenInput = 1 << 20

// loginOptions are the flags of `auth login`.
type loginOptions struct {
	device, withToken bool
	// noBrowser prints the URL and reads the redirect back from stdin.
	noBrowser bool
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
	// clientMetadataURL is a client ID metadata document's URL, the
	// client ID when none is named.
	clientMetadataURL string
	work              workloadFlags
	// authParams go with the authorization request only, not
	// remembered: a step-up's acr_values and max_age (RFC 9470 §4).
	authParams url.Values

	// changed reports whether a flag was given (cobra's Changed): an
	// unset flag keeps what is remembered for the host.
	changed func(name string) bool
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
  --no-browser  open no browser: open the printed URL on any machine and
                paste back the address it ends on (or the code it shows);
                over SSH without a display this is chosen for you, or
                --device when the server offers it
  --with-token  read a bare access token, or a token-response JSON with
                access_token, refresh_token, expires_in and token_type, from
                stdin; with a refresh token the credential refreshes itself

A program with no person logs in with a grant that latch runs again
whenever the token expires (there is no refresh token):

  --grant client-credentials  the client's own token (RFC 6749 §4.4), with
                a secret or --private-key-file (RFC 7523 private_key_jwt)
  --subject-token-file FILE   exchange the token in FILE, read again at every
                renewal (RFC 8693): a Kubernetes service-account token
  --github-actions            exchange the GitHub Actions job's OIDC token

The endpoints come from the host's RFC 8414 or OIDC discovery document;
--auth-url, --token-url, --device-url and --revocation-url override them,
and with --token-url and --auth-url (or --device-url; for --grant,
--token-url alone) no discovery is needed. --scopes, --param, --audience,
--resource and the endpoints are remembered for the host, so later logins
and commands need only --host.

The client is the one named (--client-id, LATCH_CLIENT_ID); else
--client-metadata-url, a client ID metadata document, where the server
accepts one (it replaces the host's remembered client); else the host's
remembered client; else latch registers itself (RFC 7591) where the server
allows it.

The credential is bound to the host's issuer, the client ID and --org.`,
		Example: `  latch auth login --host https://auth.example.com
  latch auth login --device
  latch auth login --scopes read:jira-work,offline_access --audience api.atlassian.com
  latch auth login --host https://github.com --auth-url https://github.com/login/oauth/authorize \
      --token-url https://github.com/login/oauth/access_token
  echo "$TOKEN_JSON" | latch auth login --with-token
  latch auth login --client-id svc --private-key-file svc.pem
  latch auth login --client-id ci --github-actions`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.device && o.withToken {
				return usageError(errors.New("--device and --with-token cannot be used together"))
			}
			if o.noBrowser && (o.device || o.withToken) {
				return usageError(errors.New("--no-browser is for the browser login; it cannot be used with --device or --with-token"))
			}
			o.changed = cmd.Flags().Changed
			if runF != nil {
				return runF(&o)
			}
			a.loggingIn = true
			return a.login(cmd.Context(), &o)
		},
	}
	o.addFlags(c)
	return c
}

// addFlags defines the login flags on c.
func (o *loginOptions) addFlags(c *cobra.Command) {
	f := c.Flags()
	f.BoolVar(&o.device, "device", false, "log in with a code shown here and entered on another device (RFC 8628)")
	f.BoolVar(&o.withToken, "with-token", false, "read a token or a token-response JSON from stdin")
	f.BoolVar(&o.noBrowser, "no-browser", false, "print the URL and read back the address the browser ends on, or its code (SSH, another machine)")
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
	f.StringVar(&o.clientMetadataURL, "client-metadata-url", "", "with no client named: use the client ID metadata document at this https `URL` as the client ID, where the server accepts one (draft-ietf-oauth-client-id-metadata-document); before registering (RFC 7591)")
	o.addWorkloadFlags(f)
}

// login runs `latch auth login`: plan, obtain a token, check it, store
// it under the credential's lock, remember the host's settings, report.
func (a *App) login(ctx context.Context, o *loginOptions) error {
	p, err := a.planLogin(ctx, o)
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
	checked, expired, err := a.checkLoginToken(ctx, o, p, tok)
	if err != nil {
		return err
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
	if err := a.forgetCopy(sc, tok.Key()); err != nil {
		return err
	}
	a.printReplaced(p, replaced, unopenable)
	if err := a.remember(context.WithoutCancel(ctx), p.host, p.cfg, p.org, sc.kind, p.hostSettings()); err != nil {
		return err
	}
	a.printLoggedIn(p, sc, tok, o.withToken, checked, expired)
	return a.revokeReplaced(ctx, p, replaced, tok, o.keepReplaced || a.hostEntry(p.host).KeepReplaced)
}

// checkLoginToken checks a pasted token with the server, which must not
// refuse it (it would only fail later, far from where it was pasted), or
// asks who a new login is for. A refreshable token at or near its expiry
// is refreshed by the first command anyway (latch.DefaultSkew): checking
// it says nothing, and expired says so.
func (a *App) checkLoginToken(ctx context.Context, o *loginOptions, p *loginPlan, tok *latch.Token) (checked string, expired bool, err error) {
	expired = o.withToken && tok.Expired(time.Now().Add(latch.DefaultSkew))
	switch {
	case expired && tok.Refreshable():
	case o.withToken:
		checked, err = a.checkToken(ctx, p.host, p.md, p.endpoints, tok)
	case p.grant != nil:
		// A program's token: no person for userinfo to name.
	default:
		tok.User = a.whoIs(ctx, p.cfg, p.md, p.endpoints, tok)
	}
	return checked, expired, err
}

// printReplaced says what the saved login replaced: a live login, or a
// set this store key could not open (and so could not revoke).
func (a *App) printReplaced(p *loginPlan, replaced *latch.Token, unopenable bool) {
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
}

// hostSettings is what the login remembers for its host.
func (p *loginPlan) hostSettings() config.Host {
	h := config.Host{Scopes: p.cfg.Scopes, Params: p.params, Metadata: p.md, ClientAuth: p.method, RedirectURI: p.redirectURI,
		Registration: p.reg, Resource: p.resource, Grant: p.grant}
	if p.cfg.ClientSecret != "" {
		h.ClientSecretFrom = p.secretFrom
	}
	if p.server != p.host {
		h.AuthServer = p.server
	}
	if p.endpoints != (config.Endpoints{}) {
		h.Endpoints = &p.endpoints
	}
	return h
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

// obtainToken gets the token set: the pasted one, by the device grant or
// by the browser. An error that a login setting must fix is exit 2.
func (a *App) obtainToken(ctx context.Context, o *loginOptions, p *loginPlan) (*latch.Token, error) {
	var tok *latch.Token
	var err error
	switch {
	case p.grant != nil:
		tok, err = a.workloadToken(ctx, p.cfg, p.grant, nil)
		if refusedAtLogin(err) {
			err = usageError(fmt.Errorf("%w; %s", err, workloadHint(p.grant)))
		}
	case o.withToken:
		tok = p.input
	case o.device:
		tok, err = a.deviceLogin(ctx, p.cfg, o.timeout)
	default:
		noBrowser := o.noBrowser
		if why := a.noBrowserHere(); why != "" && !noBrowser {
			if p.cfg.Endpoint.DeviceAuthURL != "" {
				fmt.Fprintf(a.Stderr, "%s: logging in with the device grant (RFC 8628) instead. (--no-browser pastes the browser's address back instead.)\n", why)
				tok, err = a.deviceLogin(ctx, p.cfg, o.timeout)
				break
			}
			fmt.Fprintf(a.Stderr, "%s, and the server has no device grant: open the URL below on any machine and paste back where it sends you.\n", why)
			noBrowser = true
		}
		opts := authcode.Options{Timeout: o.timeout, RedirectURI: p.redirectURI, IssuerRequired: p.md.IssParameterSupported, AuthParams: o.authParams}
		if noBrowser {
			opts.OpenURL, opts.Paste = a.pasteOpener(p.redirectURI), a.Stdin
		} else {
			opts.OpenURL = a.browserOpener(fmt.Sprintf("Waiting up to %s for the browser to come back to latch (Ctrl-C to cancel; use --no-browser or --device on a machine without a browser)...", o.timeout))
		}
		tok, err = authcode.Login(ctx, p.cfg, opts)
		switch {
		case errors.Is(err, authcode.ErrTimeout) && !noBrowser:
			a.printTimeoutCauses(p.cfg, p.redirectURI)
			err = fmt.Errorf("%w; the likely causes are listed above", err)
		case errors.Is(err, authcode.ErrPaste):
			err = usageError(err)
		}
	}
	if p.grant != nil {
		return tok, err // workloadHint named the settings
	}
	return tok, settingError(err, p.cfg.ClientID)
}

// noBrowserHere says why no browser can open for this login ("" when one
// may): an SSH session with no display to open it on, and no $BROWSER.
func (a *App) noBrowserHere() string {
	if a.Getenv("BROWSER") != "" || a.Getenv("SSH_CONNECTION") == "" && a.Getenv("SSH_TTY") == "" {
		return ""
	}
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" && (a.Getenv("DISPLAY") != "" || a.Getenv("WAYLAND_DISPLAY") != "") {
		return "" // X11 or Wayland forwarded: the browser opens there
	}
	return "This is an SSH session and no browser can open here"
}

// pasteOpener prints the URL and asks for the address the browser ends on.
func (a *App) pasteOpener(redirectURI string) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error {
		fmt.Fprintf(a.Stderr, "Open this URL in a browser on any machine to log in:\n  %s\n", u)
		if _, port, _, err := authcode.ParseRedirectURI(redirectURI); redirectURI != "" && err == nil {
			fmt.Fprintf(a.Stderr, "(With `ssh -L %s:127.0.0.1:%s` to this machine, the browser comes back by itself.)\n", port, port)
		}
		fmt.Fprintln(a.Stderr, "Then paste here the address the browser ends on (its page may say it cannot connect), or the code it shows:")
		return nil
	}
}

// settingError makes a login's error that a setting must fix, not the
// person, a usage error (exit 2) that names the settings.
func settingError(err error, clientID string) error {
	var ae *authcode.AuthorizeError
	if errors.As(err, &ae) && ae.Code != "access_denied" && ae.Code != "server_error" && ae.Code != "temporarily_unavailable" {
		// invalid_request, invalid_scope, unauthorized_client…: a login
		// setting to fix (RFC 6749 §4.1.2.1), exit 2.
		return usageError(fmt.Errorf("%w; check --scopes, --audience, --resource and --param for what the server asks", err))
	}
	var te *latch.TokenError
	if errors.As(err, &te) && slices.Contains([]string{"invalid_client", "unauthorized_client", "incorrect_client_credentials", "invalid_client_id", "bad_client_secret"}, te.Code) {
		// The client, not the person: a setting to fix (exit 2).
		return usageError(fmt.Errorf("%w; check the client ID (--client-id %s), its secret (%s or --client-secret-file) and --client-auth basic|post|none", err, clientID, EnvClientSecret))
	}
	return err
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
	if p.grant != nil {
		fmt.Fprintf(a.Stderr, "latch renews it with the %s grant before it expires, reading %s again; no refresh token is needed.\n", grantName(p.grant), grantInputs(p.grant))
		return
	}
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
		if settings.Grant != nil || h.Grant.For(cfg.ClientID, org) {
			h.Grant = settings.Grant // this login's; another login's grant stays
		}
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
		"If no browser opened, open the URL above yourself, or log in with --no-browser or --device.\n", cfg.ClientID, ru, strings.Join(cfg.Scopes, " "))
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
