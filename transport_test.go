package latch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingBody counts Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

// authServer is a resource server that accepts only the tokens in valid and
// records what it saw.
type authServer struct {
	*httptest.Server
	mu     sync.Mutex
	valid  map[string]bool
	bodies [][]byte
	auths  []string
}

func newAuthServer(t *testing.T, valid ...string) *authServer {
	s := &authServer{valid: map[string]bool{}}
	for _, v := range valid {
		s.valid[v] = true
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.bodies = append(s.bodies, body)
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		if !s.valid[trimBearer(r.Header.Get("Authorization"))] {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(401)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

// setup returns a Transport whose Source holds a token the resource server
// rejects, and whose refresh yields one it accepts.
func setup(t *testing.T) (*latch.Transport, *rotatingServer, *authServer) {
	as := newRotatingServer(t)
	tok := as.login() // at-1, rejected by rs
	rs := newAuthServer(t, "at-2")
	src := newSource(as, &storekit.Memory{}, tok)
	return &latch.Transport{Source: src}, as, rs
}

func TestTransportRetriesOnceWithSameBody(t *testing.T) {
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	for _, tt := range []struct {
		name string
		req  func(url string) (*http.Request, *countingBody)
	}{
		{"GetBody", func(u string) (*http.Request, *countingBody) {
			r, _ := http.NewRequest("POST", u, bytes.NewReader(payload))
			return r, nil
		}},
		{"plain reader buffered", func(u string) (*http.Request, *countingBody) {
			b := &countingBody{Reader: bytes.NewReader(payload)}
			r, _ := http.NewRequest("POST", u, b)
			return r, b
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, as, rs := setup(t)
			req, cb := tt.req(rs.URL)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d, want 200 after one refresh", resp.StatusCode)
			}
			if len(rs.bodies) != 2 || !bytes.Equal(rs.bodies[1], payload) || !bytes.Equal(rs.bodies[0], payload) {
				t.Fatalf("server saw %d bodies; replay not byte-for-byte", len(rs.bodies))
			}
			if rs.auths[0] != "Bearer at-1" || rs.auths[1] != "Bearer at-2" {
				t.Errorf("server saw %q", rs.auths)
			}
			if as.calls.Load() != 1 {
				t.Errorf("token calls = %d, want 1", as.calls.Load())
			}
			if cb != nil && cb.closes.Load() != 1 {
				t.Errorf("body closed %d times, want 1", cb.closes.Load())
			}
		})
	}
}

func TestTransportSecond401IsReturned(t *testing.T) {
	tr, as, _ := setup(t)
	rs := newAuthServer(t) // accepts nothing
	req, _ := http.NewRequest("GET", rs.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(rs.auths) != 2 || as.calls.Load() != 1 {
		t.Errorf("status %d after %d requests and %d refreshes; want 401 after 2 and 1", resp.StatusCode, len(rs.auths), as.calls.Load())
	}
}

func TestTransportBodyClosedOnce(t *testing.T) {
	okBase := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	for _, tt := range []struct {
		name string
		tr   func(t *testing.T) *latch.Transport
	}{
		{"success", func(t *testing.T) *latch.Transport {
			return &latch.Transport{Source: latch.StaticToken("x"), Base: okBase}
		}},
		{"token error", func(t *testing.T) *latch.Transport {
			return &latch.Transport{Source: &latch.Source{Store: &storekit.Memory{}}, Base: okBase}
		}},
		{"401 then replay", func(t *testing.T) *latch.Transport {
			tr, _, rs := setup(t)
			tr.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				u, _ := url.Parse(rs.URL)
				r.URL = u
				return http.DefaultTransport.RoundTrip(r)
			})
			return tr
		}},
		{"streamed, not replayable", func(t *testing.T) *latch.Transport {
			tr, _, rs := setup(t)
			tr.MaxReplay = 10
			tr.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				u, _ := url.Parse(rs.URL)
				r.URL = u
				return http.DefaultTransport.RoundTrip(r)
			})
			return tr
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &countingBody{Reader: strings.NewReader("hello, this is a body")}
			req, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", b)
			resp, _ := tt.tr(t).RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if n := b.closes.Load(); n != 1 {
				t.Errorf("body closed %d times, want 1", n)
			}
		})
	}
}

func TestTransportLeavesRequestUntouched(t *testing.T) {
	tr, _, rs := setup(t)
	req, _ := http.NewRequest("POST", rs.URL+"/p?q=1", strings.NewReader("body"))
	req.Header.Set("X-Custom", "v")
	before := req.Clone(context.Background())
	hdr := req.Header
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !reflect.DeepEqual(req.Header, before.Header) || req.Header.Get("Authorization") != "" {
		t.Errorf("caller's header changed: %v", req.Header)
	}
	if reflect.ValueOf(req.Header).Pointer() != reflect.ValueOf(hdr).Pointer() || req.URL.String() != before.URL.String() || req.Method != before.Method {
		t.Error("caller's request was modified")
	}
}

func TestTransportNoTokenAcrossHosts(t *testing.T) {
	var sawOther, sawSame atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawOther.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	var origin *httptest.Server
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		case "/here":
			http.Redirect(w, r, origin.URL+"/same", http.StatusFound)
		case "/same":
			sawSame.Store(r.Header.Get("Authorization"))
		}
	}))
	defer origin.Close()
	c := &http.Client{Transport: &latch.Transport{Source: latch.StaticToken("tok")}}
	for _, p := range []string{"/away", "/here"} {
		resp, err := c.Get(origin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if v := sawOther.Load(); v != "" {
		t.Errorf("other host saw Authorization %q, want none", v)
	}
	if v := sawSame.Load(); v != "Bearer tok" {
		t.Errorf("same host after redirect saw %q, want the token", v)
	}
}

func TestTransportOrigins(t *testing.T) {
	var saw atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		saw.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		origins []string
		want    string
	}{
		{[]string{srv.URL}, "Bearer tok"},
		{[]string{"https://api.example.com"}, ""},
	} {
		tr := &latch.Transport{Source: latch.StaticToken("tok"), Origins: tt.origins}
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := saw.Load(); got != tt.want {
			t.Errorf("origins %v: server saw %q, want %q", tt.origins, got, tt.want)
		}
	}
}

// TestTransportStreamingBody401: a body too large to replay is streamed;
// on 401 the token is still refreshed and the caller is told to retry.
func TestTransportStreamingBody401(t *testing.T) {
	tr, as, rs := setup(t)
	tr.MaxReplay = 1024
	req, _ := http.NewRequest("PUT", rs.URL, io.NopCloser(io.LimitReader(zeros{}, 64<<10)))
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, latch.ErrBodyNotReplayable) {
		t.Fatalf("got %v, want ErrBodyNotReplayable", err)
	}
	if as.calls.Load() != 1 {
		t.Errorf("token calls = %d, want 1", as.calls.Load())
	}
	if len(rs.bodies) != 1 || len(rs.bodies[0]) != 64<<10 {
		t.Errorf("server saw %d bodies, want the whole body once", len(rs.bodies))
	}
	// The next request uses the refreshed token.
	req, _ = http.NewRequest("GET", rs.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("next request: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestTransportConcurrent401OneRefresh(t *testing.T) {
	tr, as, rs := setup(t)
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var fails atomic.Int32
	for range 1000 {
		wg.Go(func() {
			resp, err := c.Post(rs.URL, "text/plain", strings.NewReader("x"))
			if err != nil || resp.StatusCode != 200 {
				fails.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Errorf("%d requests failed", fails.Load())
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
	if as.reuses.Load() != 0 {
		t.Error("reuse detected")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// otherRefresher is a Refresher that is not a *Source: the Transport
// must treat it exactly as it treats a Source.
type otherRefresher struct {
	mu        sync.Mutex
	tok       *latch.Token
	refreshes int
}

func (r *otherRefresher) Token(context.Context) (*latch.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tok, nil
}

func (r *otherRefresher) Refresh(_ context.Context, stale *latch.Token) (*latch.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok == stale {
		r.refreshes++
		r.tok = &latch.Token{AccessToken: "at-2", TokenType: "bearer"}
	}
	return r.tok, nil
}

func TestTransportAnyRefresher(t *testing.T) {
	rs := newAuthServer(t, "at-2")
	src := &otherRefresher{tok: &latch.Token{AccessToken: "at-1"}}
	tr := &latch.Transport{Source: src}
	for i := range 2 {
		req, _ := http.NewRequest("POST", rs.URL, strings.NewReader("body"))
		req.GetBody = nil // buffered for the replay
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	if src.refreshes != 1 {
		t.Errorf("refreshes = %d, want 1", src.refreshes)
	}
	want := []string{"Bearer at-1", "Bearer at-2", "Bearer at-2"}
	if !reflect.DeepEqual(rs.auths, want) {
		t.Errorf("Authorization sent = %q, want %q", rs.auths, want)
	}
	if string(rs.bodies[1]) != "body" {
		t.Errorf("replayed body = %q", rs.bodies[1])
	}
}

type nilSource struct{}

func (nilSource) Token(context.Context) (*latch.Token, error) { return nil, nil }

func TestTransportSourceWithoutToken(t *testing.T) {
	tr := &latch.Transport{Source: nilSource{}, Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("request sent without a token")
		return nil, nil
	})}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/", nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("err = %v, want one that says the source gave no token", err)
	}
}

func TestTokenAuthorization(t *testing.T) {
	for _, tc := range []struct{ typ, want string }{
		{"", "Bearer at"}, {"bearer", "Bearer at"}, {"Bearer", "Bearer at"}, {"DPoP", "DPoP at"},
	} {
		tok := &latch.Token{AccessToken: "at", TokenType: tc.typ}
		if got := tok.Authorization(); got != tc.want {
			t.Errorf("TokenType %q: Authorization() = %q, want %q", tc.typ, got, tc.want)
		}
	}
	// A Source's token carries its value ready made; a copy whose access
	// token was changed afterwards must not send the old one.
	st := &storekit.Memory{}
	tok := &latch.Token{AccessToken: "at-1", Issuer: "https://as", ClientID: "c"}
	st.Save(context.Background(), tok.Key(), nil, tok)
	src := &latch.Source{Store: st, Key: tok.Key()}
	got, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := *got
	c.AccessToken = "at-2"
	if a := c.Authorization(); a != "Bearer at-2" {
		t.Errorf("changed copy: Authorization() = %q, want %q", a, "Bearer at-2")
	}
	if a := got.Authorization(); a != "Bearer at-1" {
		t.Errorf("Authorization() = %q", a)
	}
	// The Transport sends the value the Source computed once, and never
	// a stale one: not even for a token changed in place.
	var sent []string
	tr := &latch.Transport{Source: src, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})}
	send := func() {
		req, _ := http.NewRequest("GET", "https://api.example/x", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send()
	got.AccessToken = "at-3"
	send()
	if want := []string{"Bearer at-1", "Bearer at-3"}; !slices.Equal(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
}

// TestTransportStepUp401KeepsToken: a 401 that asks for a stronger
// authentication (RFC 9470 §3) accepted the token: no refresh, no
// replay, and a set without a refresh token is not deleted as rejected.
func TestTransportStepUp401KeepsToken(t *testing.T) {
	as := newRotatingServer(t)
	tok := as.login()
	tok.RefreshToken = ""
	st := &storekit.Memory{}
	src := newSource(as, st, tok)
	var requests atomic.Int32
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", acr_values="mfa"`)
		w.WriteHeader(401)
	}))
	defer rs.Close()
	req, _ := http.NewRequest("GET", rs.URL, nil)
	resp, err := (&latch.Transport{Source: src}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || requests.Load() != 1 || as.calls.Load() != 0 {
		t.Errorf("status %d after %d requests and %d token calls; want the 401 after 1 and 0", resp.StatusCode, requests.Load(), as.calls.Load())
	}
	if got, err := st.Load(context.Background(), src.Key); err != nil || got.AccessToken != tok.AccessToken {
		t.Errorf("store holds %v, %v; want the set kept", got, err)
	}
}

// TokenSources are comparable values, as callers use them (a map key, a
// ==); StaticToken's cached header must not make it panic.
func TestStaticTokenComparable(t *testing.T) {
	a, b := latch.StaticToken("at"), latch.StaticToken("at")
	if a == b {
		t.Error("two StaticTokens compare equal; each has its own token")
	}
	if m := map[latch.TokenSource]bool{a: true}; !m[a] {
		t.Error("a StaticToken is not found as a map key")
	}
}
