package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// fakeAS serves docs by path; every other path is a 404. %s in a doc is
// replaced by the server's URL.
type fakeAS struct {
	*httptest.Server
	hits atomic.Int32
}

func newFakeAS(t *testing.T, docs map[string]string) *fakeAS {
	t.Helper()
	f := &fakeAS{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(doc, "%s", f.URL)))
	}))
	t.Cleanup(f.Close)
	return f
}

func doc(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

func goodDoc() map[string]any {
	return map[string]any{
		"issuer":                           "%s",
		"authorization_endpoint":           "%s/authorize",
		"token_endpoint":                   "%s/token",
		"device_authorization_endpoint":    "%s/device",
		"revocation_endpoint":              "%s/revoke",
		"code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token"},
		"scopes_supported":                 []string{"openid", "offline_access"},
	}
}

func TestFetchRFC8414(t *testing.T) {
	as := newFakeAS(t, map[string]string{OAuthPath: doc(goodDoc())})
	m, err := Fetch(t.Context(), nil, as.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if m.Issuer != as.URL || m.TokenEndpoint != as.URL+"/token" || m.AuthorizationEndpoint != as.URL+"/authorize" ||
		m.DeviceAuthorizationEndpoint != as.URL+"/device" || m.RevocationEndpoint != as.URL+"/revoke" {
		t.Errorf("got %+v", m)
	}
	if len(m.CodeChallengeMethodsSupported) != 1 || m.CodeChallengeMethodsSupported[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %q", m.CodeChallengeMethodsSupported)
	}
	if got := as.hits.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1", got)
	}

	c := Config(m, "cli", []string{"openid"})
	if c.Issuer != as.URL || c.ClientID != "cli" || c.Endpoint.TokenURL != as.URL+"/token" ||
		c.Endpoint.AuthURL != as.URL+"/authorize" || c.Endpoint.DeviceAuthURL != as.URL+"/device" ||
		c.RevocationURL != as.URL+"/revoke" || len(c.Scopes) != 1 {
		t.Errorf("Config = %+v", c)
	}
	if c.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
		t.Errorf("AuthStyle = %v, want AuthStyleInParams", c.Endpoint.AuthStyle)
	}
}

func TestFetchFallsBackToOIDC(t *testing.T) {
	as := newFakeAS(t, map[string]string{OIDCPath: doc(goodDoc())})
	m, err := Fetch(t.Context(), nil, as.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if m.TokenEndpoint != as.URL+"/token" {
		t.Errorf("token_endpoint = %q", m.TokenEndpoint)
	}
	if got := as.hits.Load(); got != 2 {
		t.Errorf("server saw %d requests, want 2 (RFC 8414, then OIDC)", got)
	}
}

func TestFetchFallsBackWhenHTML(t *testing.T) {
	var url string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == OIDCPath {
			_, _ = w.Write([]byte(strings.ReplaceAll(doc(goodDoc()), "%s", url)))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>single page app</html>"))
	}))
	defer srv.Close()
	url = srv.URL
	if _, err := Fetch(t.Context(), nil, srv.URL); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
}

func TestFetchIssuerWithPath(t *testing.T) {
	d := goodDoc()
	d["issuer"] = "%s/tenant"
	as := newFakeAS(t, map[string]string{OAuthPath + "/tenant": doc(d)})
	m, err := Fetch(t.Context(), nil, as.URL+"/tenant")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if m.Issuer != as.URL+"/tenant" {
		t.Errorf("issuer = %q", m.Issuer)
	}
}

func TestFetchNotFound(t *testing.T) {
	as := newFakeAS(t, nil)
	_, err := Fetch(t.Context(), nil, as.URL)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("got %v, want *StatusError 404", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	for _, p := range []string{OAuthPath, OIDCPath} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
}

// A 4xx JSON error says why (error_description), redacted; the issuer a
// mismatched document names is kept for the "did you mean" hint.
func TestFetchSaysWhy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"access_denied","error_description":"tenant disabled \u001b[2J; key=sk-live-0123456789abcdef"}`))
	}))
	defer srv.Close()
	_, err := Fetch(t.Context(), nil, srv.URL)
	var se *StatusError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "access_denied: tenant disabled") {
		t.Fatalf("got %v, want the error_description", err)
	}
	if strings.ContainsRune(err.Error(), 0x1b) || strings.Contains(err.Error(), "sk-live-0123456789abcdef") {
		t.Fatalf("error shows server text unredacted: %q", err)
	}

	d := goodDoc()
	d["issuer"] = "https://as.example/realms/main/"
	as := newFakeAS(t, map[string]string{OAuthPath: doc(d)})
	_, err = Fetch(t.Context(), nil, as.URL)
	var me *MetadataError
	if !errors.As(err, &me) || me.Issuer != "https://as.example/realms/main" {
		t.Fatalf("got %v (%+v), want the issuer the document names", err, me)
	}
}

func TestFetchRejects(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]any)
		field  string
		reason string
	}{
		{"issuer mismatch", func(d map[string]any) { d["issuer"] = "https://evil.example" }, "issuer", `is "https://evil.example"`},
		{"missing issuer", func(d map[string]any) { delete(d, "issuer") }, "issuer", "missing"},
		{"missing token_endpoint", func(d map[string]any) { delete(d, "token_endpoint") }, "token_endpoint", "missing"},
		{"missing authorization_endpoint", func(d map[string]any) { delete(d, "authorization_endpoint") }, "authorization_endpoint", "missing"},
		{"http token endpoint", func(d map[string]any) { d["token_endpoint"] = "http://as.example/token" }, "token_endpoint", "RFC 8252 §8.3"},
		{"http device endpoint", func(d map[string]any) { d["device_authorization_endpoint"] = "http://10.0.0.1/device" }, "device_authorization_endpoint", "RFC 8252 §8.3"},
		{"http revocation endpoint", func(d map[string]any) { d["revocation_endpoint"] = "http://as.example/revoke" }, "revocation_endpoint", "RFC 8252 §8.3"},
		{"relative authorization endpoint", func(d map[string]any) { d["authorization_endpoint"] = "/authorize" }, "authorization_endpoint", "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := goodDoc()
			tt.edit(d)
			// Also served at the OIDC path: a bad RFC 8414 document must
			// not be replaced by another one.
			as := newFakeAS(t, map[string]string{OAuthPath: doc(d), OIDCPath: doc(goodDoc())})
			m, err := Fetch(t.Context(), nil, as.URL)
			if err == nil {
				t.Fatalf("Fetch = %+v, want error", m)
			}
			var me *MetadataError
			if !errors.As(err, &me) || me.Field != tt.field {
				t.Fatalf("got %v, want *MetadataError for %s", err, tt.field)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.field) || !strings.Contains(msg, tt.reason) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %q and %q", msg, tt.field, tt.reason)
			}
			if got := as.hits.Load(); got != 1 {
				t.Errorf("server saw %d requests, want 1 (no fallback)", got)
			}
		})
	}
}

func TestFetchDeviceOnlyServer(t *testing.T) {
	d := goodDoc()
	delete(d, "authorization_endpoint")
	d["grant_types_supported"] = []string{"urn:ietf:params:oauth:grant-type:device_code"}
	as := newFakeAS(t, map[string]string{OAuthPath: doc(d)})
	if _, err := Fetch(t.Context(), nil, as.URL); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
}

func TestFetchRefusesInsecureIssuer(t *testing.T) {
	var hits atomic.Int32
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) {
		hits.Add(1)
		return nil, errors.New("must not be called")
	})
	for _, iss := range []string{"http://as.example", "ftp://as.example", "as.example", "https://as.example/?x=1"} {
		_, err := Fetch(t.Context(), &http.Client{Transport: rt}, iss)
		var ue *URLError
		if !errors.As(err, &ue) {
			t.Errorf("Fetch(%q) = %v, want *URLError", iss, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests sent for insecure issuers, want 0", hits.Load())
	}
}

func TestFetchRefusesCrossHostRedirect(t *testing.T) {
	other := newFakeAS(t, map[string]string{OAuthPath: doc(goodDoc())})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+other.URL[strings.LastIndex(other.URL, ":")+1:]+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	_, err := Fetch(t.Context(), nil, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("got %v, want cross-host redirect refused", err)
	}
	if other.hits.Load() != 0 {
		t.Errorf("other host saw %d requests, want 0", other.hits.Load())
	}
}

func TestFetchBoundedRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"`))
		_, _ = w.Write([]byte(strings.Repeat("a", MaxDocument)))
		_, _ = w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	_, err := Fetch(t.Context(), nil, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("got %v, want size error", err)
	}
}

func TestFetchHonoursContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Fetch(ctx, nil, srv.URL)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkFetch measures discovery with the OIDC fallback (two GETs).
func BenchmarkFetch(b *testing.B) {
	var url string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != OIDCPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(strings.ReplaceAll(doc(goodDoc()), "%s", url)))
	}))
	defer srv.Close()
	url = srv.URL
	for b.Loop() {
		if _, err := Fetch(b.Context(), nil, srv.URL); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFetchEntraTenantTemplate: the metadata of Entra ID's /common/v2.0
// and /organizations/v2.0 names https://HOST/{tenantid}/v2.0 as issuer.
// That template, on the same host, is accepted (Issuer stays the one asked
// for, IssuerTemplate holds it); every looser variant is still refused.
func TestFetchEntraTenantTemplate(t *testing.T) {
	for _, tt := range []struct {
		name, path, issuer string
		ok                 bool
	}{
		{"common", "/common/v2.0", "%s/{tenantid}/v2.0", true},
		{"organizations", "/organizations/v2.0", "%s/{tenantid}/v2.0", true},
		{"consumers names a fixed tenant", "/consumers/v2.0", "%s/{tenantid}/v2.0", false},
		{"a tenant's own issuer", "/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", "%s/{tenantid}/v2.0", false},
		{"another host", "/common/v2.0", "https://login.evil.example/{tenantid}/v2.0", false},
		{"trailing slash", "/common/v2.0", "%s/{tenantid}/v2.0/", false},
		{"another placeholder", "/common/v2.0", "%s/{tenant}/v2.0", false},
		{"another position", "/common/v2.0", "%s/v2.0/{tenantid}", false},
		{"v1 template", "/common", "%s/{tenantid}/", false},
		{"more path", "/common/v2.0", "%s/{tenantid}/v2.0/x", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := goodDoc()
			d["issuer"] = tt.issuer
			as := newFakeAS(t, map[string]string{tt.path + OIDCPath: doc(d)})
			m, err := Fetch(t.Context(), nil, as.URL+tt.path)
			if !tt.ok {
				var me *MetadataError
				if !errors.As(err, &me) || me.Field != "issuer" {
					t.Fatalf("issuer %q for %s: got %v, %+v; want an issuer MetadataError", tt.issuer, tt.path, err, m)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if m.Issuer != as.URL+tt.path || m.IssuerTemplate != as.URL+"/{tenantid}/v2.0" {
				t.Errorf("issuer %q, template %q", m.Issuer, m.IssuerTemplate)
			}
		})
	}
}
