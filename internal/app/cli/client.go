package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
)

// baseTransport is http.DefaultTransport, wrapped in the debug logger
// when --debug or LATCH_DEBUG=1.
func (a *App) baseTransport() http.RoundTripper {
	var rt http.RoundTripper = http.DefaultTransport
	if a.debug() {
		rt = debugTransport(rt, a.Stderr)
	}
	// Outside the debug log, so the log shows it.
	return &uaTransport{base: rt, ua: userAgent()}
}

// HTTPClient returns the refresh-aware client every API call goes
// through: latch.Transport (origins: the API and GraphQL URLs) over the
// debug logger, if on, over http.DefaultTransport. LATCH_TOKEN, when set,
// is used as is and never refreshed or stored (LESSONS 11). The client and
// its Source are built once, so a command reads the store once.
func (a *App) HTTPClient(ctx context.Context) (*http.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	src, err := a.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	api, err := a.APIURL(ctx)
	if err != nil {
		return nil, err
	}
	gql, err := a.GraphQLURL(ctx)
	if err != nil {
		return nil, err
	}
	a.client = &http.Client{Transport: &latch.Transport{
		Source:  src,
		Base:    a.baseTransport(),
		Origins: []string{origin(api), origin(gql)},
	}}
	return a.client, nil
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// tokenSource returns LATCH_TOKEN as a static source, or the stored
// credential's shared Source.
func (a *App) tokenSource(ctx context.Context) (latch.TokenSource, error) {
	if a.src != nil {
		return a.src, nil
	}
	if a.StaticToken() {
		a.src = latch.StaticToken(strings.TrimSpace(a.Getenv(EnvToken)))
		return a.src, nil
	}
	s, _, err := a.storedSource(ctx)
	if err != nil {
		return nil, err
	}
	a.src = s
	return s, nil
}

// storedSource builds the Source for the selected host, client and org.
// The token endpoint comes from the metadata cached at login for the
// credential's issuer, so a refresh goes only to the server that issued
// the token (LESSONS 10).
func (a *App) storedSource(ctx context.Context) (*latch.Source, *storeChoice, error) {
	host, err := a.Host()
	if err != nil {
		return nil, nil, err
	}
	sc, err := a.openStore(ctx, host, storeSource)
	if err != nil {
		return nil, nil, err
	}
	if a.hostEntry(host).Metadata == nil {
		// Every login caches the metadata, so without it there is
		// normally no credential: say so without a network call.
		k := latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: a.Org(host)}
		if _, err := sc.store.Load(ctx, k); errors.Is(err, latch.ErrNotFound) {
			return nil, nil, &latch.LoginRequiredError{Key: k, Hint: loginHint}
		}
	}
	cfg, err := a.oauthConfig(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	s := &latch.Source{
		Config:    cfg,
		Store:     sc.store,
		Key:       cfg.Key(a.Org(host)),
		LoginHint: loginHint,
	}
	if g := a.hostEntry(host).Grant; g.For(cfg.ClientID, a.Org(host)) {
		s.Regrant, s.LoginHint = a.regrant(cfg, g), workloadHint(g)
	}
	if a.debug() {
		s.OnRefresh = func(ev latch.RefreshEvent) {
			fmt.Fprintf(a.Stderr, "* latch: token %s (generation %d)\n", ev.Kind, ev.Generation)
		}
	}
	return s, sc, nil
}

// oauthConfig returns the client configuration for host, from the
// metadata cached in the config file at login, or by discovery (RFC 8414)
// when nothing is cached, with the host's login settings.
func (a *App) oauthConfig(ctx context.Context, host string) (*latch.Config, error) {
	h := a.hostEntry(host)
	md := h.Metadata
	if md == nil {
		m, err := discovery.Fetch(ctx, &http.Client{Transport: a.baseTransport()}, a.authServer(host))
		if err != nil {
			return nil, err
		}
		md = m
		// A cache; failing to keep it costs a round trip next time.
		_ = a.updateConfig(ctx, func(cf *config.File) error {
			cf.Ensure(host).Metadata = md
			return nil
		})
	}
	scopes := h.Scopes
	if scopes == nil {
		scopes = defaultScopes
	}
	c, err := a.clientConfig(host, md, scopes, h.Params)
	if err != nil {
		return nil, err
	}
	c.Endpoint.AuthStyle = authStyle(h.ClientAuth)
	return c, nil
}

// Client authentication methods (RFC 8414 §2, RFC 7591 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
)

// authStyle maps a client authentication method to the one style latch
// sends: never two, since a second try would spend the grant twice.
func authStyle(method string) oauth2.AuthStyle {
	switch method {
	case authBasic:
		return oauth2.AuthStyleInHeader
	case authNone:
		return latch.AuthStyleNone // never a secret, not even a stored one
	}
	return oauth2.AuthStyleInParams
}

// clientConfig builds the latch.Config for host's client from md.
func (a *App) clientConfig(host string, md *discovery.Metadata, scopes []string, params url.Values) (*latch.Config, error) {
	c := discovery.Config(md, a.ClientID(host), scopes)
	c.Issuer = config.Normalize(md.Issuer)
	c.Params = params
	c.HTTPClient = &http.Client{Transport: a.baseTransport()}
	if v := a.Getenv(EnvTokenTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, usageError(fmt.Errorf("%s=%q: want a positive duration such as 10s", EnvTokenTimeout, v))
		}
		c.Timeout = d
	}
	return c, nil
}
