// Package discovery fetches and checks OAuth 2.0 authorization server
// metadata (RFC 8414), falling back to OpenID Connect Discovery 1.0.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/endpoint"
	"github.com/latchdev/latch/internal/jsonobj"
	"github.com/latchdev/latch/internal/redact"
)

// MaxDocument is the most of a metadata document that is read.
const MaxDocument = 1 << 20

// DefaultTimeout bounds Fetch when the context has no earlier deadline and
// the http.Client has no Timeout of its own.
const DefaultTimeout = 15 * time.Second

// Well-known paths: RFC 8414 §3 and OpenID Connect Discovery 1.0 §4.
const (
	OAuthPath = "/.well-known/oauth-authorization-server"
	OIDCPath  = "/.well-known/openid-configuration"
)

// Metadata is the part of an authorization server's metadata (RFC 8414 §2)
// that latch uses: endpoint.Metadata, which Fetch fills and checks.
type Metadata = endpoint.Metadata

// Config returns a latch.Config for a public client of the server m
// describes. The client authenticates with its client_id in the body
// (AuthStyleInParams) and never probes a second style (RFC 6749 §2.3;
// see LESSONS 6).
func Config(m *Metadata, clientID string, scopes []string) *latch.Config {
	return &latch.Config{
		Issuer:   m.Issuer,
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       m.AuthorizationEndpoint,
			DeviceAuthURL: m.DeviceAuthorizationEndpoint,
			TokenURL:      m.TokenEndpoint,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RevocationURL: m.RevocationEndpoint,
		Scopes:        append([]string(nil), scopes...),
	}
}

// URLError says a URL may not be used as an endpoint (see
// endpoint.URLError).
type URLError = endpoint.URLError

// MetadataError says a metadata document is unusable: a required field is
// missing or invalid, or its issuer is not the one asked for (RFC 8414 §3.3).
type MetadataError struct {
	URL    string // where the document came from
	Field  string // e.g. "token_endpoint"
	Reason string // e.g. "missing"
	Err    error  // underlying cause, e.g. a *URLError; may be nil
	// Issuer is the issuer the document names, when it is not the one
	// asked for: usually the --host a person meant.
	Issuer string
}

func (e *MetadataError) Error() string {
	s := "metadata at " + e.URL + ": " + e.Field + " " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *MetadataError) Unwrap() error { return e.Err }

// StatusError is a metadata answer that was not a JSON document: a non-200
// status, or a body that is not JSON. It never quotes the body.
type StatusError struct {
	URL         string
	StatusCode  int
	ContentType string
	Reason      string
	// Description is the server's error and error_description, when
	// the answer was an RFC 6749 §5.2 style JSON error, redacted.
	Description string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("metadata at %s: HTTP %d", e.URL, e.StatusCode)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.ContentType != "" {
		s += " (" + e.ContentType + ")"
	}
	return s
}

// CheckURL reports whether raw may be used as an endpoint: an absolute
// https URL, or http only when the host is a loopback address (RFC 8252
// §8.3). It is endpoint.CheckURL; the error is a *URLError.
func CheckURL(raw string) error { return endpoint.CheckURL(raw) }

// IsLoopback reports whether host (without port) is "localhost" or a
// loopback IP address (127.0.0.0/8 or ::1); see endpoint.IsLoopback.
func IsLoopback(host string) bool { return endpoint.IsLoopback(host) }

// Fetch reads issuer's metadata from its RFC 8414 §3 well-known URL and,
// when that is not found, from the OpenID Connect Discovery URL. It checks
// that the document names issuer (RFC 8414 §3.3), that the required
// fields are present and that every endpoint passes CheckURL. hc may be
// nil. Fetch reads at most MaxDocument bytes, is bounded by hc.Timeout or
// DefaultTimeout, and follows redirects only within the issuer's host.
func Fetch(ctx context.Context, hc *http.Client, issuer string) (*Metadata, error) {
	if err := CheckURL(issuer); err != nil {
		return nil, fmt.Errorf("discover issuer: %w", err)
	}
	iu, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("discover issuer: %w", err)
	}
	if iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("discover issuer: %w", &URLError{URL: issuer, Reason: "issuer must have no query or fragment (RFC 8414 §2)"})
	}
	want := strings.TrimSuffix(issuer, "/")

	client, timeout := metadataClient(hc, iu.Host)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var errs []error
	for _, u := range wellKnown(iu) {
		m, err := fetch(ctx, client, u, want)
		if err == nil {
			return m, nil
		}
		var se *StatusError
		if !errors.As(err, &se) {
			// A document that exists but is wrong, or a network error:
			// do not paper over it with another document.
			return nil, fmt.Errorf("discover %s: %w", want, err)
		}
		errs = append(errs, err)
	}
	// One line, both causes: errors.Join would break the line.
	return nil, fmt.Errorf("discover %s: no metadata found: %w; %w", want, errs[0], errs[1])
}

// metadataClient is hc's transport and bound (or the defaults) with
// redirects kept on host, for fetching a metadata document.
func metadataClient(hc *http.Client, host string) (*http.Client, time.Duration) {
	client := &http.Client{Transport: http.DefaultTransport, CheckRedirect: sameHost(host)}
	timeout := DefaultTimeout
	if hc != nil {
		if hc.Transport != nil {
			client.Transport = hc.Transport
		}
		if hc.Timeout > 0 {
			timeout = hc.Timeout
		}
	}
	return client, timeout
}

// wellKnown returns the URLs to try, in order: RFC 8414 §3.1 inserts the
// well-known path before the issuer's path; OIDC Discovery §4 appends it.
func wellKnown(iu *url.URL) []string {
	path := strings.TrimSuffix(iu.EscapedPath(), "/")
	base := iu.Scheme + "://" + iu.Host
	return []string{base + OAuthPath + path, base + path + OIDCPath}
}

func sameHost(host string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != host {
			return fmt.Errorf("redirect to another host %q refused", req.URL.Host)
		}
		if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect from https to http refused")
		}
		return nil
	}
}

func fetch(ctx context.Context, hc *http.Client, u, issuer string) (*Metadata, error) {
	body, err := getDocument(ctx, hc, u)
	if err != nil {
		return nil, err
	}
	var m Metadata
	if json.Unmarshal(body, &m) != nil {
		return nil, &StatusError{URL: u, StatusCode: http.StatusOK, Reason: "not a JSON object"}
	}
	if err := check(&m, u, issuer); err != nil {
		return nil, err
	}
	return &m, nil
}

// getDocument GETs a JSON metadata document: a *StatusError unless the
// answer is 200 with a JSON object, at most MaxDocument bytes.
func getDocument(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch %s: %w", u, ctx.Err())
		}
		return nil, fmt.Errorf("fetch %s: %w", u, unwrapURL(err))
	}
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: u, StatusCode: resp.StatusCode, ContentType: ct, Description: errorDescription(resp.Body)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	if len(body) > MaxDocument {
		return nil, fmt.Errorf("read %s: document larger than 1 MiB", u)
	}
	if !jsonobj.Looks(body) {
		// Many servers answer any path with an HTML page and 200.
		return nil, &StatusError{URL: u, StatusCode: resp.StatusCode, ContentType: ct, Reason: "not a JSON object"}
	}
	return body, nil
}

// check validates m as fetched from u for issuer (RFC 8414 §2, §3.3).
func check(m *Metadata, u, issuer string) error {
	if m.Issuer == "" {
		return &MetadataError{URL: u, Field: "issuer", Reason: "missing"}
	}
	// RFC 8414 §3.3: the issuer must be identical to the one asked for;
	// a single trailing slash is not treated as a difference. The one
	// exception is Entra ID's multi-tenant template, exactly as documented.
	if t := TenantTemplate(issuer); t != "" && m.Issuer == t {
		m.Issuer, m.IssuerTemplate = issuer, t
	}
	if strings.TrimSuffix(m.Issuer, "/") != issuer {
		return &MetadataError{URL: u, Field: "issuer", Reason: fmt.Sprintf("is %q, want %q (RFC 8414 §3.3)", redact.Control(m.Issuer), issuer),
			Issuer: strings.TrimSuffix(m.Issuer, "/")}
	}
	if m.TokenEndpoint == "" {
		return &MetadataError{URL: u, Field: "token_endpoint", Reason: "missing"}
	}
	if m.AuthorizationEndpoint == "" && needsAuthorizationEndpoint(m) {
		return &MetadataError{URL: u, Field: "authorization_endpoint", Reason: "missing"}
	}
	for _, f := range []struct{ name, v string }{
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"token_endpoint", m.TokenEndpoint},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint},
		{"userinfo_endpoint", m.UserinfoEndpoint},
		{"jwks_uri", m.JWKSURI},
		{"registration_endpoint", m.RegistrationEndpoint},
	} {
		if f.v == "" {
			continue
		}
		if err := CheckURL(f.v); err != nil {
			return &MetadataError{URL: u, Field: f.name, Reason: "is not allowed", Err: err}
		}
	}
	return nil
}

// TenantPlaceholder is the tenant segment of Entra ID's multi-tenant
// issuer template.
const TenantPlaceholder = "{tenantid}"

// TenantTemplate returns the issuer that Microsoft Entra ID's metadata
// names for a multi-tenant issuer (https://HOST/common/v2.0 or
// https://HOST/organizations/v2.0): https://HOST/{tenantid}/v2.0, on the
// same scheme and host. For any other issuer it returns "". Microsoft
// documents the template in "OpenID Connect on the Microsoft identity
// platform" (the "Find your app's OpenID configuration document URI"
// table); OIDC Discovery §4.3 alone would refuse it.
func TenantTemplate(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return ""
	}
	switch strings.TrimSuffix(u.EscapedPath(), "/") {
	case "/common/v2.0", "/organizations/v2.0":
		return u.Scheme + "://" + u.Host + "/" + TenantPlaceholder + "/v2.0"
	}
	return ""
}

// needsAuthorizationEndpoint: RFC 8414 §2 requires authorization_endpoint
// unless no supported grant type uses it.
func needsAuthorizationEndpoint(m *Metadata) bool {
	if len(m.GrantTypesSupported) == 0 {
		return true // the default includes authorization_code
	}
	for _, g := range m.GrantTypesSupported {
		if g == "authorization_code" || g == "implicit" {
			return true
		}
	}
	return false
}

// errorDescription reads a JSON error answer's error and
// error_description (RFC 6749 §5.2), redacted for showing; "" otherwise.
func errorDescription(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if !jsonobj.Looks(b) || json.Unmarshal(b, &e) != nil || e.Error == "" && e.Description == "" {
		return ""
	}
	s := e.Error
	if e.Description != "" {
		if s != "" {
			s += ": "
		}
		s += e.Description
	}
	return redact.Server(s)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
