package latch_test

import (
	"context"
	"errors"
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
	"github.com/latchdev/latch/storekit"
)

// grantServer answers the client credentials grant (RFC 6749 §4.4.3)
// with access tokens only, or with what answer says.
type grantServer struct {
	*httptest.Server
	calls  atomic.Int64
	answer func(n int64, w http.ResponseWriter) bool // true: answered
}

func newGrantServer(t *testing.T) *grantServer {
	s := &grantServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.calls.Add(1)
		if r.PostFormValue("grant_type") == "refresh_token" {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
			return
		}
		if r.PostFormValue("grant_type") != "client_credentials" {
			writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
			return
		}
		if s.answer != nil && s.answer(n, w) {
			return
		}
		time.Sleep(50 * time.Millisecond) // let the others pile up on the lock
		writeJSON(w, 200, map[string]any{"access_token": "cc-" + time.Now().Format(time.RFC3339Nano), "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(s.Close)
	return s
}

// regrantSource is a Source over st whose Regrant is the client
// credentials grant against srv; st holds tok.
func regrantSource(t *testing.T, srv *grantServer, st latch.Store, tok *latch.Token) *latch.Source {
	cfg := &latch.Config{Issuer: srv.URL, ClientID: "svc", Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: latch.AuthStyleNone}}
	if tok != nil {
		tok.Issuer, tok.ClientID = cfg.Issuer, cfg.ClientID
		if err := st.Save(context.Background(), tok.Key(), nil, tok); err != nil {
			t.Fatal(err)
		}
	}
	return &latch.Source{Config: cfg, Store: st, Key: cfg.Key(""), LoginHint: "run `latch auth login`",
		Regrant: func(ctx context.Context, _ *latch.Token) (*latch.Token, error) {
			return cfg.Grant(ctx, url.Values{"grant_type": {"client_credentials"}})
		}}
}

func ccToken(expiry time.Time) *latch.Token {
	return &latch.Token{AccessToken: "cc-old", TokenType: "Bearer", Expiry: expiry, IssuedAt: expiry.Add(-time.Hour)}
}

// TestSourceRegrantOnceAcrossSources: two Sources (two processes' worth)
// over one store, a thousand callers, an expired set without a refresh
// token: one grant, one saved set, everyone gets it.
func TestSourceRegrantOnceAcrossSources(t *testing.T) {
	srv := newGrantServer(t)
	st := &storekit.Memory{}
	srcs := []*latch.Source{
		regrantSource(t, srv, st, ccToken(time.Now().Add(-time.Minute))),
		regrantSource(t, srv, st, nil),
	}
	var wg sync.WaitGroup
	toks := make([]string, 1000)
	errs := make([]error, len(toks))
	for i := range toks {
		wg.Go(func() {
			tok, err := srcs[i%2].Token(context.Background())
			if err == nil {
				toks[i] = tok.AccessToken
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if toks[i] != toks[0] || toks[i] == "cc-old" {
			t.Fatalf("caller %d got %q, caller 0 got %q", i, toks[i], toks[0])
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
	stored, _ := st.Load(context.Background(), srcs[0].Key)
	if stored.AccessToken != toks[0] || stored.Generation != 1 || stored.Issuer != srv.URL {
		t.Errorf("store holds %q gen %d issuer %q, want %q gen 1 bound to %s", stored.AccessToken, stored.Generation, stored.Issuer, toks[0], srv.URL)
	}
}

// TestSourceRegrantEarlyAndAfter401: a Regrant set is renewed inside the
// skew like a refreshable one (without Regrant it is used until it
// expires), and a 401 renews it too.
func TestSourceRegrantEarlyAndAfter401(t *testing.T) {
	srv := newGrantServer(t)
	src := regrantSource(t, srv, &storekit.Memory{}, ccToken(time.Now().Add(30*time.Second)))
	got, err := src.Token(context.Background())
	if err != nil || got.AccessToken == "cc-old" {
		t.Fatalf("early: got %v, %v; want a new token", got, err)
	}
	again, err := src.Refresh(context.Background(), got)
	if err != nil || again.AccessToken == got.AccessToken || again.Generation != 2 {
		t.Fatalf("after a 401: got %v, %v; want generation 2", again, err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("token endpoint calls = %d, want 2", n)
	}
}

// TestSourceRegrantRefused: a terminal answer keeps a still-valid token
// (used until it expires) and, once expired, is login required — and the
// stored set stays either way, so that the next call asks again (a
// rotated subject token may work then).
func TestSourceRegrantRefused(t *testing.T) {
	for _, tt := range []struct {
		name      string
		expiry    time.Duration
		wantLogin bool
	}{
		{"still valid", 30 * time.Second, false},
		{"expired", -time.Minute, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newGrantServer(t)
			srv.answer = func(_ int64, w http.ResponseWriter) bool {
				writeJSON(w, 400, map[string]any{"error": "invalid_client", "error_description": "key not registered"})
				return true
			}
			st := &storekit.Memory{}
			src := regrantSource(t, srv, st, ccToken(time.Now().Add(tt.expiry)))
			got, err := src.Token(context.Background())
			if n := srv.calls.Load(); n != 1 {
				t.Errorf("token endpoint calls = %d, want 1 (the renewal was asked for)", n)
			}
			if tt.wantLogin {
				if !errors.Is(err, latch.ErrLoginRequired) || !latch.IsTerminal(err) {
					t.Fatalf("got %v, %v; want ErrLoginRequired with the server's reason", got, err)
				}
				if want := "invalid_client"; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			} else if err != nil || got.AccessToken != "cc-old" {
				t.Fatalf("got %v, %v; want the still-valid token", got, err)
			}
			if stored, err := st.Load(context.Background(), src.Key); err != nil || stored.AccessToken != "cc-old" {
				t.Errorf("store: %v, %v; want the set kept", stored, err)
			}
		})
	}
}

// TestSourceRegrantTransient: unprocessed answers are resent; a failure
// that stays is not login required.
func TestSourceRegrantTransient(t *testing.T) {
	srv := newGrantServer(t)
	srv.answer = func(n int64, w http.ResponseWriter) bool {
		if n > 2 {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	src := regrantSource(t, srv, &storekit.Memory{}, ccToken(time.Now().Add(-time.Minute)))
	if got, err := src.Token(context.Background()); err != nil || got.AccessToken == "cc-old" {
		t.Fatalf("got %v, %v; want a new token after two 503s", got, err)
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("token endpoint calls = %d, want 3", n)
	}

	down := newGrantServer(t)
	down.answer = func(int64, http.ResponseWriter) bool { down.CloseClientConnections(); return true }
	src = regrantSource(t, down, &storekit.Memory{}, ccToken(time.Now().Add(-time.Minute)))
	src.Retries = -1
	_, err := src.Token(context.Background())
	if err == nil || errors.Is(err, latch.ErrLoginRequired) || errors.Is(err, latch.ErrAnswerLost) {
		t.Fatalf("got %v; want a transient error that is neither login required nor a lost refresh", err)
	}
}

// TestSourceRegrantAfterDeadRefreshToken: a grant whose answer carried a
// refresh token that the server then refuses is asked again before
// anything is dropped; the set is replaced, not deleted.
func TestSourceRegrantAfterDeadRefreshToken(t *testing.T) {
	srv := newGrantServer(t)
	st := &storekit.Memory{}
	tok := ccToken(time.Now().Add(-time.Minute))
	tok.RefreshToken = "rt-dead"
	src := regrantSource(t, srv, st, tok)
	got, err := src.Token(context.Background())
	if err != nil || got.AccessToken == "cc-old" {
		t.Fatalf("got %v, %v; want the grant's new token", got, err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("token endpoint calls = %d, want 2 (the refused refresh, the grant)", n)
	}
	if stored, err := st.Load(context.Background(), src.Key); err != nil || stored.AccessToken != got.AccessToken {
		t.Errorf("store: %v, %v; want the new set", stored, err)
	}
}

// TestSourceRegrantRateLimited: an error answer sent with 429 or 5xx is
// transient, whatever its code: not login required.
func TestSourceRegrantRateLimited(t *testing.T) {
	for _, status := range []int{429, 502} {
		srv := newGrantServer(t)
		srv.answer = func(_ int64, w http.ResponseWriter) bool {
			writeJSON(w, status, map[string]any{"error": "rate_limited"})
			return true
		}
		src := regrantSource(t, srv, &storekit.Memory{}, ccToken(time.Now().Add(-time.Minute)))
		src.Retries = -1
		if _, err := src.Token(context.Background()); err == nil || errors.Is(err, latch.ErrLoginRequired) {
			t.Errorf("HTTP %d: %v; want a transient error", status, err)
		}
	}
}
