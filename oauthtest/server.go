package oauthtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// DefaultScope is granted when an authorization request names no scope
// (RFC 6749 §3.3). offline_access is always granted, whatever the request.
const DefaultScope = oidc.ScopeOfflineAccess

// Options configures a Server. The zero value is usable. Lifetimes are
// reported as expires_in (RFC 6749 §5.1, RFC 8628 §3.2).
type Options struct {
	AccessTTL  time.Duration // access token lifetime; default 1h; whole seconds down to 1s
	RefreshTTL time.Duration // refresh token lifetime; default 24h
	// RefreshIdle, when positive, is a sliding idle window: a refresh
	// token unused for this long is refused with invalid_grant, and each
	// rotation's new token gets a fresh window (capped by RefreshTTL).
	// Token answers then carry refresh_token_expires_in, the whole seconds
	// the new refresh token has left (draft-ietf-oauth-refresh-token-expiration).
	// Whole seconds down to 1s.
	RefreshIdle        time.Duration
	AutoApprove        bool          // /authorize redirects straight back with a code, no page
	DeviceApproveAfter int           // device grant: the first N polls are pending, the next is approved; 0 needs a person or ApproveDevice
	Clients            []string      // allowed client_ids; empty accepts any client_id as a public client
	User               string        // login of the single user; default "dev"
	DeviceCodeTTL      time.Duration // device code lifetime (RFC 8628 §3.2 expires_in); default 10m
	DeviceInterval     time.Duration // device poll interval (RFC 8628 §3.2 interval); default 1s, whole seconds
	// RotationGrace, when positive, lets a rotated refresh token be
	// redeemed again for this long after its rotation, with a fresh set
	// and no reuse detection, as Hydra's rotation_grace_period, Okta's
	// grace window and Auth0's reuse interval do. Zero is strict.
	RotationGrace time.Duration
	// RevokeTokenOnly makes RFC 7009 revocation of a refresh token revoke
	// that token alone, not its family with every access token, as RFC
	// 7009 §2.1 allows ("may" revoke the grant).
	RevokeTokenOnly bool
	// Quirks reproduce real providers' departures from the plain path.
	Quirks Quirks
	// Registration serves dynamic client registration (RFC 7591) at
	// /register and names it in the metadata: public clients only.
	Registration bool
}

func (o Options) withDefaults() Options {
	if o.AccessTTL <= 0 {
		o.AccessTTL = time.Hour
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 24 * time.Hour
	}
	if o.User == "" {
		o.User = "dev"
	}
	if o.DeviceCodeTTL <= 0 {
		o.DeviceCodeTTL = 10 * time.Minute
	}
	if o.DeviceInterval < time.Second {
		o.DeviceInterval = time.Second
	}
	return o
}

// Server is an OAuth 2.0 authorization server (RFC 6749, RFC 7636, RFC 8628,
// RFC 7009, metadata per RFC 8414) and bearer-token protected resource (RFC
// 6750) for development and tests, built on zitadel/oidc. Refresh tokens
// rotate with reuse detection (RFC 9700 §4.14.2). It is safe for concurrent use.
type Server struct {
	// URL is the issuer and base URL, such as http://127.0.0.1:PORT, without a trailing slash.
	URL string

	opts     Options
	store    *storage
	provider *op.Provider
	counters *counterSet
	work     *workloads
	schema   *graphql.Schema
	handler  http.Handler

	faultsMu sync.Mutex
	faults   Faults
	quirksMu sync.Mutex // guards opts.Quirks

	closing   chan struct{}
	closeOnce sync.Once
	srv       *http.Server
	serveDone chan struct{}
}

// New returns a Server whose issuer (RFC 8414 §2) is baseURL, without listening. Serve its
// Handler yourself; Close only stops in-flight fault latency.
func New(opts Options, baseURL string) (*Server, error) {
	return newServer(opts, baseURL, time.Now)
}

func newServer(opts Options, baseURL string, now func() time.Time) (*Server, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("parse base URL: want http(s)://host[:port], got %q", baseURL)
	}
	opts = opts.withDefaults()
	s := &Server{
		URL:      strings.TrimSuffix(baseURL, "/"),
		opts:     opts,
		counters: newCounterSet(),
		closing:  make(chan struct{}),
	}
	s.store, err = newStorage(opts, s.counters, now)
	if err != nil {
		return nil, err
	}
	s.store.quirks = s.quirks
	cfg := &op.Config{
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     opts.DeviceCodeTTL,
			PollInterval: opts.DeviceInterval,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	s.provider, err = op.NewProvider(cfg, s.store, op.StaticIssuer(s.URL), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("create provider: %w", err)
	}
	if s.work, err = newWorkloads(s.URL, s.URL+s.provider.TokenEndpoint().Relative()); err != nil {
		return nil, fmt.Errorf("generate workload key: %w", err)
	}
	s.store.work = s.work
	s.schema, err = newSchema(opts.User)
	if err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// NewServer starts a Server on 127.0.0.1 (RFC 8252 §7.3 loopback) with a free port, like
// httptest.NewServer. It panics if it cannot listen. Call Close when done.
func NewServer(opts Options) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("oauthtest: listen: %v", err))
	}
	s, err := New(opts, "http://"+ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		panic(fmt.Sprintf("oauthtest: %v", err))
	}
	s.start(ln)
	return s
}

func (s *Server) start(ln net.Listener) {
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln)
	}()
}

// Close stops the server started by NewServer or Serve and waits for its
// goroutines and connections to finish. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.srv == nil {
			return
		}
		// Connections a client dialled but never used count as busy for
		// five seconds in Shutdown; do not wait for them.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.serveDone
	})
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Counters returns a snapshot of the counters, as served at GET /_dev/counters.
func (s *Server) Counters() Counters { return s.counters.snapshot() }

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() { s.counters.reset() }

// SetFaults replaces the fault plan of the token endpoint (RFC 6749 §3.2).
func (s *Server) SetFaults(f Faults) {
	s.faultsMu.Lock()
	s.faults = f
	s.faultsMu.Unlock()
}

// ExpireAccessTokens makes every access token issued so far expire now; the
// resource then answers 401 (RFC 6750 §3.1) and refresh tokens still work.
func (s *Server) ExpireAccessTokens() { s.store.expireAccessTokens() }

// SetAccessTTL sets the lifetime of access tokens issued from now on
// (Options.AccessTTL); tokens already issued keep theirs.
func (s *Server) SetAccessTTL(d time.Duration) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.store.accessTTL = d
}

// RevokeFamily revokes the refresh-token family that refreshToken belongs to,
// current or already rotated: every refresh and access token of that login
// stops working. Unknown tokens are ignored.
func (s *Server) RevokeFamily(refreshToken string) { s.store.revokeFamilyOf(refreshToken) }

// ApproveDevice approves the device authorization with userCode (RFC 8628
// §3.3), as a person on the verification page would.
func (s *Server) ApproveDevice(userCode string) error {
	if err := s.store.decideDevice(userCode, true); err != nil {
		return fmt.Errorf("approve device: %w", err)
	}
	return nil
}

// DenyDevice denies the device authorization with userCode (RFC 8628 §3.5 access_denied).
func (s *Server) DenyDevice(userCode string) error {
	if err := s.store.decideDevice(userCode, false); err != nil {
		return fmt.Errorf("deny device: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.Handle(s.provider.TokenEndpoint().Relative(), s.tokenEndpoint(s.clientAuth(s.provider)))
	mux.Handle(s.provider.AuthorizationEndpoint().Relative(), s.addIss(defaultScope(s.authorizeQuirks(s.provider))))
	mux.Handle(s.provider.RevocationEndpoint().Relative(), s.clientAuth(s.provider))
	mux.Handle(s.provider.DeviceAuthorizationEndpoint().Relative(), s.clientAuth(s.provider))
	mux.HandleFunc(loginPath, s.login)
	mux.HandleFunc("GET "+resourcePath, s.resourceMetadata)
	if s.opts.Registration {
		mux.HandleFunc("POST "+registerPath, s.register)
	}
	mux.HandleFunc(devicePath, s.devicePage)
	mux.Handle("/_dev/", s.devAPI())
	mux.HandleFunc("GET "+ActionsPath, s.actionsToken)
	mux.Handle("/v2/", s.requireToken(s.restAPI()))
	mux.Handle("/graphql", s.requireToken(http.HandlerFunc(s.graphql)))
	mux.Handle(s.provider.AuthorizationEndpoint().Relative()+"/callback", s.addIss(s.provider))
	mux.Handle("/", s.provider)
	return s.noDiscovery(s.tenantDiscovery(s.cloudResources(mux)))
}

// defaultScope applies DefaultScope to authorization requests without a
// scope, which zitadel would refuse (RFC 6749 §3.3 allows a default).
func defaultScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && strings.TrimSpace(r.Form.Get("scope")) == "" {
			r.Form.Set("scope", DefaultScope)
		}
		next.ServeHTTP(w, r)
	})
}

// authServerMetadata is the RFC 8414 §2 document.
type authServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint            string   `json:"device_authorization_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	UserinfoEndpoint                       string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                                string   `json:"jwks_uri"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	// RFC 9207 §3
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// draft-ietf-oauth-client-id-metadata-document §5
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// metadata serves RFC 8414 §3 authorization server metadata.
func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.metadataDoc())
}

func (s *Server) metadataDoc() authServerMetadata {
	p := s.provider
	reg := ""
	if s.opts.Registration {
		reg = s.URL + registerPath
	}
	return authServerMetadata{
		RegistrationEndpoint:        reg,
		Issuer:                      s.URL,
		AuthorizationEndpoint:       p.AuthorizationEndpoint().Absolute(s.URL),
		TokenEndpoint:               p.TokenEndpoint().Absolute(s.URL),
		DeviceAuthorizationEndpoint: p.DeviceAuthorizationEndpoint().Absolute(s.URL),
		RevocationEndpoint:          p.RevocationEndpoint().Absolute(s.URL),
		UserinfoEndpoint:            p.UserinfoEndpoint().Absolute(s.URL),
		JWKSURI:                     p.KeysEndpoint().Absolute(s.URL),
		ScopesSupported:             []string{oidc.ScopeOfflineAccess, oidc.ScopeOpenID},
		ResponseTypesSupported:      []string{string(oidc.ResponseTypeCode)},
		ResponseModesSupported:      []string{string(oidc.ResponseModeQuery)},
		GrantTypesSupported: []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeDeviceCode),
			string(oidc.GrantTypeClientCredentials), string(oidc.GrantTypeTokenExchange)},
		CodeChallengeMethodsSupported:              []string{string(oidc.CodeChallengeMethodS256)},
		ClientIDMetadataDocumentSupported:          true,
		TokenEndpointAuthMethodsSupported:          s.quirks().authMethods(),
		RevocationEndpointAuthMethodsSupported:     s.quirks().authMethods(),
		AuthorizationResponseIssParameterSupported: s.quirks().advertisesIss(),
	}
}

// Serve runs a Server (metadata per RFC 8414) on addr, a loopback host and port such as
// "127.0.0.1:0", for `latch dev server`. The first line written to stdout is
// the base URL, http://127.0.0.1:PORT; login instructions follow. Serve
// returns nil once ctx ends and the server has stopped.
func Serve(ctx context.Context, opts Options, addr string, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parse address: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("parse address: %q is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s, err := New(opts, "http://"+ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return err
	}
	s.start(ln)
	defer s.Close()
	o := s.opts
	_, err = fmt.Fprintf(stdout, `%s
latch dev server: issuer %s, user %q, access tokens %s, refresh tokens %s
Log in with:
  latch auth login --host %s
Counters:  curl %s/_dev/counters
Metadata:  %s/.well-known/oauth-authorization-server
Press Ctrl-C to stop.
`, s.URL, s.URL, o.User, o.AccessTTL, o.RefreshTTL, s.URL, s.URL, s.URL)
	if err != nil {
		return fmt.Errorf("write instructions: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-s.serveDone:
		return errors.New("serve: server stopped")
	}
}
