package oauthtest

import (
	"context"
	"encoding/json"
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
)

const testClient = "latch-test"

// clock is real time plus an offset that tests advance.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// start runs a Server with a test clock on 127.0.0.1 and closes it at cleanup.
func start(t testing.TB, opts Options) (*Server, *clock) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	s, err := newServer(opts, "http://"+ln.Addr().String(), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	s.start(ln)
	t.Cleanup(s.Close)
	return s, clk
}

// callback is a client's loopback redirect endpoint (RFC 8252 §7.3).
type callback struct {
	*httptest.Server
	mu   sync.Mutex
	last url.Values
}

func newCallback(t testing.TB) *callback {
	cb := &callback{}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.last = r.URL.Query()
		cb.mu.Unlock()
		io.WriteString(w, "You can close this window.")
	}))
	t.Cleanup(cb.Close)
	return cb
}

func (cb *callback) query() url.Values {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.last
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := oauth2.GenerateVerifier()
	return pkce{v, oauth2.S256ChallengeFromVerifier(v)}
}

func authorizeURL(s *Server, clientID, redirect, state string, p pkce, extra url.Values) string {
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"state":                 {state},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
	}
	for k, vs := range extra {
		v[k] = vs
	}
	return s.URL + "/authorize?" + v.Encode()
}

// tokenAnswer is a token endpoint answer: success (RFC 6749 §5.1) or error (§5.2).
type tokenAnswer struct {
	Status       int
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	// RefreshExpiresIn is refresh_token_expires_in, when sent.
	RefreshExpiresIn *int   `json:"refresh_token_expires_in"`
	Error            string `json:"error"`
	Description      string `json:"error_description"`
	Header           http.Header
}

func postForm(t testing.TB, endpoint string, form url.Values) tokenAnswer {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := tokenAnswer{Status: resp.StatusCode, Header: resp.Header}
	if len(body) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("decode %s answer %q: %v", endpoint, body, err)
		}
	}
	return a
}

func wantError(t testing.TB, a tokenAnswer, status int, code string) {
	t.Helper()
	if a.Status != status || a.Error != code {
		t.Fatalf("got status %d error %q (%s), want %d %q", a.Status, a.Error, a.Description, status, code)
	}
}

func wantTokens(t testing.TB, a tokenAnswer) {
	t.Helper()
	if a.Status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("got status %d error %q (%s), want tokens", a.Status, a.Error, a.Description)
	}
}

// authorize runs the browser part of the code flow and returns the code.
func authorize(t testing.TB, s *Server, clientID string, p pkce, extra url.Values) (code, redirect string) {
	t.Helper()
	cb := newCallback(t)
	redirect = cb.URL + "/callback"
	if err := s.Browser()(context.Background(), authorizeURL(s, clientID, redirect, "st8", p, extra)); err != nil {
		t.Fatalf("browser: %v", err)
	}
	q := cb.query()
	if q.Get("state") != "st8" || q.Get("code") == "" {
		t.Fatalf("callback got %v, want code and state st8", q)
	}
	return q.Get("code"), redirect
}

func exchange(t testing.TB, s *Server, clientID, code, redirect, verifier string) tokenAnswer {
	t.Helper()
	return postForm(t, s.URL+"/oauth/token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirect},
		"client_id":     {clientID},
		"code_verifier": {verifier},
	})
}

// login runs the whole code flow and returns the tokens.
func login(t testing.TB, s *Server) tokenAnswer {
	t.Helper()
	p := newPKCE()
	code, redirect := authorize(t, s, testClient, p, nil)
	a := exchange(t, s, testClient, code, redirect, p.verifier)
	wantTokens(t, a)
	return a
}

func refresh(t testing.TB, s *Server, rt string) tokenAnswer {
	t.Helper()
	return postForm(t, s.URL+"/oauth/token", url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {rt},
		"client_id":     {testClient},
	})
}

// get calls the resource with a bearer token and returns status, header and body.
func get(t testing.TB, s *Server, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func wantResource(t testing.TB, s *Server, token string, status int) {
	t.Helper()
	got, h, body := get(t, s, "/v2/user", token)
	if got != status {
		t.Fatalf("GET /v2/user: got %d %s, want %d", got, body, status)
	}
	if status == http.StatusUnauthorized && !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate: got %q, want Bearer error=\"invalid_token\"", h.Get("WWW-Authenticate"))
	}
}
