package authcode

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
)

const testCode = "the-authorization-code-0123456789"

// fakeAS is an authorization server. /authorize checks the request and
// redirects to the redirect_uri with whatever redirect returns; /token
// checks the PKCE verifier against the challenge it saw.
type fakeAS struct {
	*httptest.Server

	// redirect builds the callback query from the authorize query.
	redirect func(q url.Values) url.Values
	// onToken, if set, runs in the token handler before it answers.
	onToken func()
	// tokenError, if set, is the token endpoint's error code.
	tokenError string

	mu        sync.Mutex
	authorize url.Values // last authorize query
	tokenForm url.Values // last token form
	tokens    atomic.Int32
}

func newFakeAS(t testing.TB) *fakeAS {
	f := &fakeAS{}
	f.redirect = func(q url.Values) url.Values {
		return url.Values{"code": {testCode}, "state": {q.Get("state")}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		f.authorize = q
		f.mu.Unlock()
		ru, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || ru.Scheme != "http" {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		ru.RawQuery = f.redirect(q).Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		f.tokens.Add(1)
		_ = r.ParseForm()
		f.mu.Lock()
		f.tokenForm = r.PostForm
		f.mu.Unlock()
		if f.onToken != nil {
			f.onToken()
		}
		w.Header().Set("Content-Type", "application/json")
		if f.tokenError != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"`+f.tokenError+`"}`)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"at-1","refresh_token":"rt-1","token_type":"Bearer","expires_in":3600}`)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAS) config() *latch.Config {
	return &latch.Config{
		Issuer:   f.URL,
		ClientID: "cli",
		Endpoint: oauth2.Endpoint{
			AuthURL:   f.URL + "/authorize?audience=api",
			TokenURL:  f.URL + "/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		Scopes: []string{"openid", "offline_access"},
	}
}

// browser follows the authorize URL over HTTP, as a person's browser
// would, and keeps the last page it was shown.
type browser struct {
	mu     sync.Mutex
	url    string
	status int
	body   string
	before func(ctx context.Context, authURL string) // runs first, if set
}

func (b *browser) open(ctx context.Context, authURL string) error {
	b.mu.Lock()
	b.url = authURL
	b.mu.Unlock()
	if b.before != nil {
		b.before(ctx, authURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.mu.Lock()
		b.body = err.Error()
		b.mu.Unlock()
		return nil // a browser shows its own error page; the login goes on
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.mu.Lock()
	b.status, b.body = resp.StatusCode, string(body)
	b.mu.Unlock()
	return nil
}

func (b *browser) page() (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, b.body
}

func (b *browser) authURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.url
}

func TestLogin(t *testing.T) {
	as := newFakeAS(t)
	var b browser
	tok, err := Login(t.Context(), as.config(), Options{OpenURL: b.open})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" || tok.Issuer != as.URL || tok.ClientID != "cli" {
		t.Errorf("token = %+v", tok)
	}

	as.mu.Lock()
	aq, tf := as.authorize, as.tokenForm
	as.mu.Unlock()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "cli",
		"scope":                 "openid offline_access",
		"code_challenge_method": "S256",
		"audience":              "api", // kept from the endpoint URL
	} {
		if got := aq.Get(k); got != want {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	if len(aq.Get("state")) < 43 {
		t.Errorf("state %q is shorter than 256 bits", aq.Get("state"))
	}
	ru, err := url.Parse(aq.Get("redirect_uri"))
	if err != nil || ru.Scheme != "http" || ru.Hostname() != "127.0.0.1" || ru.Port() == "" || ru.Port() == "0" || ru.Path != "/callback" {
		t.Errorf("redirect_uri = %q, want http://127.0.0.1:PORT/callback", aq.Get("redirect_uri"))
	}

	// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge.
	sum := sha256.Sum256([]byte(tf.Get("code_verifier")))
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); tf.Get("code_verifier") == "" || got != aq.Get("code_challenge") {
		t.Errorf("S256(code_verifier) = %q, want code_challenge %q", got, aq.Get("code_challenge"))
	}
	for k, want := range map[string]string{
		"grant_type":   "authorization_code",
		"code":         testCode,
		"redirect_uri": aq.Get("redirect_uri"),
		"client_id":    "cli",
	} {
		if got := tf.Get(k); got != want {
			t.Errorf("token form %s = %q, want %q", k, got, want)
		}
	}
	if n := as.tokens.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}

	status, body := b.page()
	if status != http.StatusOK || !strings.Contains(body, "close this tab") {
		t.Errorf("browser got %d %q, want the success page", status, body)
	}
	assertClosed(t, aq.Get("redirect_uri"))
}

func TestLoginRejects(t *testing.T) {
	tests := []struct {
		name     string
		redirect func(q url.Values) url.Values
		is       error
		check    func(t *testing.T, err error)
	}{
		{
			name: "wrong state",
			redirect: func(q url.Values) url.Values {
				return url.Values{"code": {testCode}, "state": {"forged"}}
			},
			is: ErrStateMismatch,
		},
		{
			name: "no state",
			redirect: func(q url.Values) url.Values {
				return url.Values{"code": {testCode}}
			},
			is: ErrStateMismatch,
		},
		{
			name: "access denied",
			redirect: func(q url.Values) url.Values {
				return url.Values{"error": {"access_denied"}, "error_description": {"The user said no\x1b[2J"}, "state": {q.Get("state")}}
			},
			is: ErrAccessDenied,
			check: func(t *testing.T, err error) {
				var ae *AuthorizeError
				if !errors.As(err, &ae) || ae.Code != "access_denied" {
					t.Errorf("got %v, want *AuthorizeError access_denied", err)
				}
				if !strings.Contains(err.Error(), "access denied by the user") || strings.Contains(err.Error(), "\x1b") {
					t.Errorf("error %q: want a clean message saying the user denied access", err)
				}
			},
		},
		{
			name: "other error",
			redirect: func(q url.Values) url.Values {
				return url.Values{"error": {"invalid_scope"}, "state": {q.Get("state")}}
			},
			check: func(t *testing.T, err error) {
				var ae *AuthorizeError
				if !errors.As(err, &ae) || ae.Code != "invalid_scope" {
					t.Errorf("got %v, want *AuthorizeError invalid_scope", err)
				}
				if errors.Is(err, ErrAccessDenied) {
					t.Errorf("invalid_scope matches ErrAccessDenied")
				}
			},
		},
		{
			name: "error with wrong state",
			redirect: func(q url.Values) url.Values {
				return url.Values{"error": {"access_denied"}, "state": {"forged"}}
			},
			is: ErrStateMismatch,
		},
		{
			name: "issuer mix-up",
			redirect: func(q url.Values) url.Values {
				return url.Values{"code": {testCode}, "state": {q.Get("state")}, "iss": {"https://other.example"}}
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "RFC 9207") {
					t.Errorf("got %v, want issuer mismatch", err)
				}
			},
		},
		{
			name: "no code",
			redirect: func(q url.Values) url.Values {
				return url.Values{"state": {q.Get("state")}}
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "neither code nor error") {
					t.Errorf("got %v, want missing code", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t)
			as.redirect = tt.redirect
			var b browser
			tok, err := Login(t.Context(), as.config(), Options{OpenURL: b.open})
			if err == nil {
				t.Fatalf("Login = %+v, want error", tok)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want %v", err, tt.is)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if n := as.tokens.Load(); n != 0 {
				t.Errorf("token endpoint called %d times, want 0", n)
			}
			if strings.Contains(err.Error(), testCode) {
				t.Errorf("error %q contains the code", err)
			}
			status, body := b.page()
			if status != http.StatusBadRequest || !strings.Contains(body, "Login did not complete") {
				t.Errorf("browser got %d %q, want the failure page", status, body)
			}
		})
	}
}

func TestLoginExchangeError(t *testing.T) {
	as := newFakeAS(t)
	as.tokenError = "invalid_grant"
	var b browser
	_, err := Login(t.Context(), as.config(), Options{OpenURL: b.open, FailureHTML: "custom failure"})
	var te *latch.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Fatalf("got %v, want *latch.TokenError invalid_grant", err)
	}
	as.mu.Lock()
	verifier := as.tokenForm.Get("code_verifier")
	as.mu.Unlock()
	if strings.Contains(err.Error(), testCode) || strings.Contains(err.Error(), verifier) {
		t.Errorf("error %q contains the code or the verifier", err)
	}
	if status, body := b.page(); status != http.StatusBadRequest || body != "custom failure" {
		t.Errorf("browser got %d %q, want the custom failure page", status, body)
	}
}

func TestLoginCustomSuccessPage(t *testing.T) {
	as := newFakeAS(t)
	var b browser
	if _, err := Login(t.Context(), as.config(), Options{OpenURL: b.open, SuccessHTML: "<p>done</p>"}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if status, body := b.page(); status != http.StatusOK || body != "<p>done</p>" {
		t.Errorf("browser got %d %q, want the custom page", status, body)
	}
}

func TestLoginTimeout(t *testing.T) {
	as := newFakeAS(t)
	var b browser
	// A browser that never comes back: OpenURL only records the URL.
	open := func(ctx context.Context, u string) error {
		b.mu.Lock()
		b.url = u
		b.mu.Unlock()
		return nil
	}
	_, err := Login(t.Context(), as.config(), Options{OpenURL: open, Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "timed out waiting for the browser") {
		t.Errorf("error %q does not say what timed out", err)
	}
	u, _ := url.Parse(b.authURL())
	assertClosed(t, u.Query().Get("redirect_uri"))
}

func TestLoginContextCanceled(t *testing.T) {
	as := newFakeAS(t)
	ctx, cancel := context.WithCancel(t.Context())
	open := func(context.Context, string) error { cancel(); return nil }
	_, err := Login(ctx, as.config(), Options{OpenURL: open})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestLoginOpenURLError(t *testing.T) {
	as := newFakeAS(t)
	var redirect string
	open := func(_ context.Context, u string) error {
		pu, _ := url.Parse(u)
		redirect = pu.Query().Get("redirect_uri")
		return errors.New("no browser")
	}
	_, err := Login(t.Context(), as.config(), Options{OpenURL: open})
	if err == nil || !strings.Contains(err.Error(), "open browser: no browser") {
		t.Fatalf("got %v, want the OpenURL error", err)
	}
	assertClosed(t, redirect)
}

func TestLoginIgnoresUnrelatedRequests(t *testing.T) {
	as := newFakeAS(t)
	var stray []int
	b := browser{before: func(ctx context.Context, authURL string) {
		pu, _ := url.Parse(authURL)
		ru, _ := url.Parse(pu.Query().Get("redirect_uri"))
		base := "http://" + ru.Host
		for _, r := range []struct{ method, path string }{
			{"GET", "/favicon.ico"},
			{"GET", "/"},
			{"GET", "/callback"}, // no authorization response in it
			{"POST", "/callback?code=x&state=y"},
		} {
			req, _ := http.NewRequestWithContext(ctx, r.method, base+r.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", r.method, r.path, err)
				continue
			}
			resp.Body.Close()
			stray = append(stray, resp.StatusCode)
		}
	}}
	if _, err := Login(t.Context(), as.config(), Options{OpenURL: b.open}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	want := []int{404, 404, 400, 405}
	if len(stray) != len(want) {
		t.Fatalf("stray statuses %v, want %v", stray, want)
	}
	for i := range want {
		if stray[i] != want[i] {
			t.Errorf("stray statuses %v, want %v", stray, want)
			break
		}
	}
	if status, _ := b.page(); status != http.StatusOK {
		t.Errorf("browser got %d, want 200", status)
	}
}

func TestLoginAcceptsOneCallback(t *testing.T) {
	as := newFakeAS(t)
	second := -1
	// While the first callback is being redeemed, a second one arrives.
	as.onToken = func() {
		as.mu.Lock()
		q := as.authorize
		as.mu.Unlock()
		resp, err := http.Get(q.Get("redirect_uri") + "?code=other&state=" + url.QueryEscape(q.Get("state")))
		if err != nil {
			t.Errorf("second callback: %v", err)
			return
		}
		resp.Body.Close()
		second = resp.StatusCode
	}
	var b browser
	tok, err := Login(t.Context(), as.config(), Options{OpenURL: b.open})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if second != http.StatusConflict {
		t.Errorf("second callback got %d, want 409", second)
	}
	if n := as.tokens.Load(); n != 1 || tok.AccessToken != "at-1" {
		t.Errorf("token calls = %d, token = %q; want 1 call for the first code", n, tok.AccessToken)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if got := as.tokenForm.Get("code"); got != testCode {
		t.Errorf("redeemed code %q, want the first one", got)
	}
}

func TestLoginBadOptions(t *testing.T) {
	as := newFakeAS(t)
	open := func(context.Context, string) error { t.Error("OpenURL called"); return nil }
	cfg := as.config()
	noAuth := as.config()
	noAuth.Endpoint.AuthURL = ""
	tests := []struct {
		name string
		cfg  *latch.Config
		opts Options
		want string
	}{
		{"nil OpenURL", cfg, Options{}, "OpenURL is nil"},
		{"public host", cfg, Options{OpenURL: open, Host: "0.0.0.0"}, "not a loopback"},
		{"localhost name", cfg, Options{OpenURL: open, Host: "localhost"}, "not a loopback"},
		{"no authorization endpoint", noAuth, Options{OpenURL: open}, "no authorization endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Login(t.Context(), tt.cfg, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// assertClosed checks that nothing listens at the callback any more.
func assertClosed(t *testing.T, redirectURI string) {
	t.Helper()
	u, err := url.Parse(redirectURI)
	if err != nil || u.Host == "" {
		t.Fatalf("bad redirect_uri %q", redirectURI)
	}
	c, err := net.Dial("tcp", u.Host)
	if err == nil {
		c.Close()
		t.Errorf("callback server at %s still accepts connections", u.Host)
	}
}

// BenchmarkLogin measures one whole loopback login against a local fake:
// listen, authorize redirect, callback, code exchange, shutdown.
func BenchmarkLogin(b *testing.B) {
	as := newFakeAS(b)
	cfg := as.config()
	for b.Loop() {
		var br browser
		if _, err := Login(b.Context(), cfg, Options{OpenURL: br.open}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseRedirectURI(t *testing.T) {
	for _, tt := range []struct{ in, host, port, path string }{
		{"http://127.0.0.1:8765/callback", "127.0.0.1", "8765", "/callback"},
		{"http://localhost:8765/cb", "127.0.0.1", "8765", "/cb"},
		{"http://[::1]:9000/", "::1", "9000", "/"},
		{"http://127.0.0.1:8765", "127.0.0.1", "8765", "/"},
	} {
		h, p, path, err := ParseRedirectURI(tt.in)
		if err != nil || h != tt.host || p != tt.port || path != tt.path {
			t.Errorf("ParseRedirectURI(%q) = %q, %q, %q, %v; want %q, %q, %q", tt.in, h, p, path, err, tt.host, tt.port, tt.path)
		}
	}
	for _, bad := range []string{"https://127.0.0.1:8765/cb", "http://example.com:8765/cb", "http://127.0.0.1/cb", "http://127.0.0.1:8765/cb?x=1"} {
		if _, _, _, err := ParseRedirectURI(bad); err == nil {
			t.Errorf("ParseRedirectURI(%q): no error", bad)
		}
	}
}

// TestLoginAuthParams: AuthParams go with the authorization request only,
// beat a Config.Params of the same name, never one Login sets, and are
// not sent to the token endpoint (a step-up's acr_values, RFC 9470 §4).
func TestLoginAuthParams(t *testing.T) {
	as := newFakeAS(t)
	var b browser
	cfg := as.config()
	cfg.Params = url.Values{"acr_values": {"remembered"}}
	_, err := Login(t.Context(), cfg, Options{OpenURL: b.open,
		AuthParams: url.Values{"acr_values": {"mfa"}, "max_age": {"300"}, "state": {"forged"}}})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	as.mu.Lock()
	aq, tf := as.authorize, as.tokenForm
	as.mu.Unlock()
	if aq.Get("acr_values") != "mfa" || aq.Get("max_age") != "300" || aq.Get("state") == "forged" {
		t.Errorf("authorize: acr_values %q, max_age %q, state %q", aq.Get("acr_values"), aq.Get("max_age"), aq.Get("state"))
	}
	if tf.Has("max_age") {
		t.Errorf("the token request carries max_age: %v", tf)
	}
}
