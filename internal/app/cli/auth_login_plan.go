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

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/register"
)

// The planning of `latch auth login`: flags, the host's remembered
// settings and the server's metadata become a loginPlan, checked before
// the person is asked for anything. Running it is in auth_login.go.

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
	grant             *config.Grant // a workload login's grant
	input             *latch.Token  // --with-token's token
	secret            string
	secretFrom        string // where the secret was given: file:PATH or env:NAME
}

// planLogin checks the login's flags and input and finds the server's
// endpoints and client, registering one when asked; p.cfg is ready to use.
// The checks keep their order: which host, the settings, stdin, the
// secret, discovery, registration, then the client's settings.
func (a *App) planLogin(ctx context.Context, o *loginOptions) (*loginPlan, error) {
	p, named, err := a.planHost(ctx, o)
	if err != nil {
		return nil, err
	}
	scopes, err := a.planInputs(o, p, named)
	if err != nil {
		return nil, err
	}
	if p.grant, err = o.workloadGrant(a.hostEntry(p.host), a.ClientID(p.host), p.org); err != nil {
		return nil, err
	}
	if p.grant != nil {
		if p.grant.Type == config.GrantClientCredentials && !a.clientNamed(p.host) {
			return nil, usageError(errors.New("--grant client-credentials needs the client it logs in as: pass --client-id"))
		}
		if scopes == nil {
			scopes = []string{} // no openid or offline_access for a program: the server's default
		}
	}
	var methods []string
	if p.cfg, p.md, methods, err = a.loginConfig(ctx, p.host, p.server, scopes, p.params, p.endpoints, p.grant != nil); err != nil {
		return nil, err
	}
	if p.grant == nil {
		// The client: named, else a metadata document, else the host's
		// remembered one, else one registered (RFC 7591); each says so.
		documented, err := a.documentClient(ctx, o, p)
		if err != nil {
			return nil, err
		}
		if !documented {
			if p.reg, err = a.registerClient(ctx, o, p.host, p.cfg, p.md, p.secretFrom); err != nil {
				return nil, err
			}
		}
	} else if o.clientMetadataURL != "" {
		return nil, usageError(errors.New("--client-metadata-url is for a person's login; --grant logs in as a registered client (--client-id)"))
	}
	if other := a.sharedWith(p.host, p.cfg.Key(p.org)); other != "" {
		return nil, usageError(fmt.Errorf("this login would share its credential with the login for %s (the same authorization server, client and account); add --org NAME to keep them apart, or log out of %s first",
			other, other))
	}
	if err := a.planClient(o, p, methods); err != nil {
		return nil, err
	}
	return p, nil
}

// planHost finds the login's host and its authorization server: the one
// --resource's metadata names (RFC 9728), returned as named, or the
// host's own.
func (a *App) planHost(ctx context.Context, o *loginOptions) (p *loginPlan, named string, err error) {
	if named, err = a.hostFromResource(ctx, o); err != nil {
		return nil, "", err
	}
	host, err := a.Host()
	if errors.Is(err, errNoHost) {
		return nil, "", usageError(errors.New("no host to log in to: pass --host URL (the authorization server) or set " + EnvHost + ", or --resource URL for an API that names its server (RFC 9728)"))
	}
	if err != nil {
		return nil, "", err
	}
	p = &loginPlan{host: host, server: a.authServer(host), resource: a.hostEntry(host).Resource, org: a.Org(host)}
	if named != "" {
		p.server, p.resource = named, host
	}
	return p, named, nil
}

// planInputs checks what needs no network: the settings, --with-token's
// input (read before any network call, so bad input fails fast),
// --timeout and the client secret, which must not go to a server a
// resource named (LESSONS 26). It returns the scopes asked for.
func (a *App) planInputs(o *loginOptions, p *loginPlan, named string) ([]string, error) {
	h := a.hostEntry(p.host)
	scopes, params, endpoints, err := o.settings(h)
	if err != nil {
		return nil, err
	}
	p.params, p.endpoints = params, endpoints
	if o.withToken {
		if p.input, err = readTokenInput(a.Stdin); err != nil {
			return nil, usageError(fmt.Errorf("--with-token: %w", err))
		}
	}
	if o.timeout <= 0 {
		return nil, usageError(errors.New("--timeout must be positive"))
	}
	if p.secret, p.secretFrom, err = a.clientSecret(o, h); err != nil {
		return nil, err
	}
	if named != "" && p.secretFrom != "" && !a.clientNamed(p.host) {
		// The user named no server and no client for this secret.
		return nil, usageError(fmt.Errorf("a client secret was given (%s) for no client: the authorization server %s was named by the resource, not by you; pass --client-id with the client the secret belongs to",
			secretOrigin(p.secretFrom), named))
	}
	return scopes, nil
}

// planClient settles how the client authenticates (a registered client
// is public), checks --api-url, --graphql-url and --redirect-uri, and
// puts the method and secret in p.cfg.
func (a *App) planClient(o *loginOptions, p *loginPlan, methods []string) error {
	h := a.hostEntry(p.host)
	var err error
	if p.method, err = o.clientAuthMethod(h, p.secret, methods); err != nil {
		return err
	}
	if p.reg != nil {
		p.method = authNone
	}
	for _, f := range []struct{ name, v string }{{"api-url", a.flags.apiURL}, {"graphql-url", a.flags.graphqlURL}} {
		if a.flagSet(f.name) {
			if err := discovery.CheckURL(f.v); err != nil {
				return usageError(fmt.Errorf("--%s: %w", f.name, err))
			}
		}
	}
	p.redirectURI = h.RedirectURI
	if o.changed("redirect-uri") {
		p.redirectURI = o.redirectURI
	}
	if p.redirectURI != "" {
		if _, _, _, err := authcode.ParseRedirectURI(p.redirectURI); err != nil {
			return usageError(fmt.Errorf("--redirect-uri: %w", err))
		}
	}
	p.cfg.Endpoint.AuthStyle = authStyle(p.method)
	if p.method != authNone {
		p.cfg.ClientSecret = p.secret
	}
	return nil
}

// settings merges the login flags with what is remembered for host.
func (o *loginOptions) settings(h *config.Host) (scopes []string, params url.Values, e config.Endpoints, err error) {
	if params, err = o.paramsFor(h); err != nil {
		return nil, nil, e, err
	}
	if e, err = o.endpointsFor(h); err != nil {
		return nil, nil, e, err
	}
	return o.scopesFor(h), params, e, nil
}

// scopesFor is --scopes, else the host's; an empty --scopes asks for none, not
// the defaults.
func (o *loginOptions) scopesFor(h *config.Host) []string {
	if !o.changed("scopes") {
		return h.Scopes
	}
	scopes := []string{}
	for _, sc := range o.scopes {
		if sc = strings.TrimSpace(sc); sc != "" {
			scopes = append(scopes, sc)
		}
	}
	return scopes
}

// paramsFor is --param, --audience and --resource when any is given,
// else the host's parameters.
func (o *loginOptions) paramsFor(h *config.Host) (url.Values, error) {
	params := url.Values{}
	if !o.changed("param") && !o.changed("audience") && !o.changed("resource") {
		for k, vs := range h.Params {
			params[k] = vs
		}
		return params, nil
	}
	for _, p := range o.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError(fmt.Errorf("--param %q: want KEY=VALUE", p))
		}
		switch k {
		case "client_id", "client_secret", "redirect_uri", "state", "code_challenge", "code_challenge_method",
			"response_type", "grant_type", "code", "code_verifier", "refresh_token", "scope":
			return nil, usageError(fmt.Errorf("--param %s: latch sets this parameter itself%s", k, scopeHint(k)))
		}
		params.Add(k, v)
	}
	if o.audience != "" {
		params.Set("audience", o.audience)
	}
	for _, r := range o.resources {
		if err := discovery.CheckURL(r); err != nil {
			return nil, usageError(fmt.Errorf("--resource: %w", err))
		}
		params.Add("resource", r)
	}
	return params, nil
}

// endpointsFor is the host's endpoints with the ones given as flags over
// them.
func (o *loginOptions) endpointsFor(h *config.Host) (config.Endpoints, error) {
	var e config.Endpoints
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
		if !o.changed(f.flag) {
			continue
		}
		// A --validate-url path is on the API URL, checked when used.
		isPath := f.flag == "validate-url" && strings.HasPrefix(f.v, "/")
		if f.v != "" && !isPath {
			if err := discovery.CheckURL(f.v); err != nil {
				return e, usageError(fmt.Errorf("--%s: %w", f.flag, err))
			}
		}
		*f.dst = f.v
	}
	return e, nil
}

func scopeHint(k string) string {
	if k == "scope" {
		return "; use --scopes"
	}
	return ""
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
// as remembered, or from the server's list (pickClientAuth).
func (o *loginOptions) clientAuthMethod(h *config.Host, secret string, supported []string) (string, error) {
	method := h.ClientAuth
	if o.changed("client-auth") {
		var ok bool
		if method, ok = map[string]string{"basic": authBasic, "post": authPost, "none": authNone}[o.clientAuth]; !ok {
			return "", usageError(fmt.Errorf("--client-auth %q: want basic, post or none", o.clientAuth))
		}
	}
	return pickClientAuth(method, secret, supported)
}

// pickClientAuth checks the method asked for ("" for none) against the
// secret, or picks one from the server's list: RFC 6749 §2.3.1 makes
// Basic the one every server supports.
func pickClientAuth(method, secret string, supported []string) (string, error) {
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

// loginConfig finds the host's endpoints (discovery, unless the explicit
// ones suffice), with the explicit endpoints over them, and the scopes:
// as given, or openid and offline_access as far as the server lists them.
func (a *App) loginConfig(ctx context.Context, host, server string, scopes []string, params url.Values, e config.Endpoints, tokenOnly bool) (*latch.Config, *discovery.Metadata, []string, error) {
	md := &discovery.Metadata{Issuer: server}
	if e.TokenURL == "" || (e.AuthURL == "" && e.DeviceURL == "" && !tokenOnly) {
		var err error
		if md, err = a.discover(ctx, server); err != nil {
			return nil, nil, nil, err
		}
	}
	supported, methods := md.ScopesSupported, md.TokenEndpointAuthMethodsSupported
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
	cfg, err := a.clientConfig(host, md, loginScopes(scopes, supported), params)
	if err == nil && cfg.Scopes == nil {
		cfg.Scopes = []string{} // none asked for, and so remembered
	}
	return cfg, md, methods, err
}

// discover fetches server's metadata (RFC 8414, OIDC Discovery); an
// answer no retry can fix is a usage error that says what to pass.
func (a *App) discover(ctx context.Context, server string) (*discovery.Metadata, error) {
	m, err := discovery.Fetch(ctx, &http.Client{Transport: a.baseTransport()}, server)
	var se *discovery.StatusError
	var me *discovery.MetadataError
	switch {
	case errors.As(err, &me) && me.Field == "issuer" && me.Issuer != "" && discovery.CheckURL(me.Issuer) == nil:
		return nil, usageError(fmt.Errorf("%w; did you mean --host %s?", err, me.Issuer))
	case errors.As(err, &me), errors.As(err, &se) && se.StatusCode < 500:
		// Trying again cannot help: a person must name the endpoints.
		return nil, usageError(fmt.Errorf("%w; for a server without discovery, pass --auth-url and --token-url", err))
	}
	return m, err
}

// loginScopes is the scopes asked for; nil means openid and
// offline_access, as far as the server lists them (supported).
func loginScopes(scopes, supported []string) []string {
	if scopes != nil {
		return scopes
	}
	if len(supported) == 0 {
		return defaultScopes
	}
	var some []string
	for _, sc := range defaultScopes {
		if slices.Contains(supported, sc) {
			some = append(some, sc)
		}
	}
	return some
}

// documentClient uses --client-metadata-url as the client ID when no
// client is named (draft-ietf-oauth-client-id-metadata-document):
// the server must say it accepts one, and the document is fetched and
// checked first, as the server will, so that what is wrong is said here
// and not on an error page the browser never comes back from. It
// reports whether it set the client.
func (a *App) documentClient(ctx context.Context, o *loginOptions, p *loginPlan) (bool, error) {
	u := o.clientMetadataURL
	switch {
	case u == "":
		return false, nil
	case a.flagSet("client-id") || a.Getenv(EnvClientID) != "":
		return false, usageError(errors.New("--client-metadata-url and --client-id both name the client; use one"))
	case p.secretFrom != "":
		return false, usageError(fmt.Errorf("a client secret was given (%s), but a client ID metadata document names a public client, which carries none", secretOrigin(p.secretFrom)))
	}
	if err := register.CheckClientID(u); err != nil {
		return false, usageError(fmt.Errorf("--client-metadata-url: %w", err))
	}
	if !p.md.ClientIDMetadataDocumentSupported {
		return false, usageError(fmt.Errorf("%s does not say it accepts client ID metadata documents (its metadata has no client_id_metadata_document_supported); pass --client-id, or leave out --client-metadata-url and latch registers a client where the server allows it (RFC 7591)", p.server))
	}
	doc, err := register.FetchDocument(ctx, &http.Client{Transport: a.baseTransport()}, u)
	var de *register.DocumentError
	switch {
	case errors.As(err, &de) && (de.StatusCode == http.StatusTooManyRequests || de.StatusCode >= 500):
		return false, &ExitError{Code: ExitTransient, Err: err}
	case errors.As(err, &de):
		return false, usageError(err)
	}
	if err != nil {
		return false, err
	}
	redirect := "http://127.0.0.1" + authcode.CallbackPath
	if o.redirectURI != "" {
		redirect = o.redirectURI
	} else if h := a.hostEntry(p.host); h.RedirectURI != "" {
		redirect = h.RedirectURI
	}
	if !o.device && !o.withToken && !doc.AllowsRedirect(redirect) {
		return false, usageError(fmt.Errorf("the client ID metadata document %s does not list latch's redirect URI %s in its redirect_uris; add it (a loopback URI without a port admits any port, RFC 8252 §7.3), or pass --redirect-uri with one it lists", u, redirect))
	}
	p.cfg.ClientID = u
	fmt.Fprintf(a.Stderr, "Using the client ID metadata document %s as the client (draft-ietf-oauth-client-id-metadata-document); later logins reuse it.\n", u)
	return true, nil
}

// registerClient registers latch as a public client (RFC 7591) when no
// client ID is configured and the server has a registration endpoint (or
// --registration-url names one). The client is remembered for the host
// and reused by every later login. It returns nil when it did not register.
func (a *App) registerClient(ctx context.Context, o *loginOptions, host string, cfg *latch.Config, md *discovery.Metadata, secretFrom string) (*config.Registration, error) {
	endpoint := md.RegistrationEndpoint
	if o.changed("registration-url") {
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
	c, err := register.Register(ctx, &http.Client{Transport: a.baseTransport()}, endpoint, o.registration(a.hostEntry(host), cfg.Scopes))
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

// registration is the client latch registers: public, native, with the
// login's redirect URI (any loopback port, RFC 8252 §7.3) and grant.
func (o *loginOptions) registration(h *config.Host, scopes []string) register.Request {
	redirect := "http://127.0.0.1" + authcode.CallbackPath
	if o.redirectURI != "" {
		redirect = o.redirectURI
	} else if h.RedirectURI != "" {
		redirect = h.RedirectURI
	}
	grants := []string{"authorization_code", "refresh_token"}
	if o.device {
		grants = []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}
	}
	return register.Request{
		ClientName: "latch", SoftwareID: "github.com/latchdev/latch", ApplicationType: "native",
		RedirectURIs: []string{redirect}, GrantTypes: grants, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: authNone, Scope: strings.Join(scopes, " "),
	}
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
