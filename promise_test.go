package latch_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
)

// The tests in this file are the library regressions of the promise
// issue; each failed on the code before its fix.

// TestServerTextIsShownSafely (item 5): a server that quotes the refresh
// token, or terminal escapes, in error_description or error_uri.
func TestServerTextIsShownSafely(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := expired(srv.login())
	src := newSource(srv, st, tok)
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		rt := r.PostFormValue("refresh_token")
		writeJSON(w, 400, map[string]any{"error": "invalid_grant",
			"error_description": "refresh token " + rt + " rejected \x1b]0;owned\x07\x1b[2J\u009b31m",
			"error_uri":         "https://as.example/errors?token=" + rt})
		return true
	}
	_, err := src.Token(context.Background())
	if !errors.Is(err, latch.ErrLoginRequired) {
		t.Fatalf("got %v, want ErrLoginRequired", err)
	}
	msg := err.Error()
	if strings.Contains(msg, tok.RefreshToken) {
		t.Errorf("error %q quotes the refresh token", msg)
	}
	if strings.ContainsAny(msg, "\x1b\x07\u009b") {
		t.Errorf("error %q carries control characters", msg)
	}
	var te *latch.TokenError
	if !errors.As(err, &te) || strings.Contains(te.Description+te.URI, tok.RefreshToken) {
		t.Errorf("the TokenError itself still holds the token: %+v", te)
	}
	if !strings.Contains(msg, "invalid_grant") || !strings.Contains(msg, "rejected") {
		t.Errorf("error %q lost the server's words", msg)
	}
}

// TestRevokedInsideEarlyWindow (item 6): the grant is revoked while the
// access token is inside the early-refresh window. The early refresh gets
// invalid_grant, the kept access token then meets a 401: the user gets a
// login-required error that says the grant was revoked, never the raw 401,
// and the rejected token is not sent again.
func TestRevokedInsideEarlyWindow(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	tok.IssuedAt = time.Now().Add(-time.Hour)
	tok.Expiry = time.Now().Add(30 * time.Second) // inside the 60 s skew
	src := newSource(srv, st, tok)
	srv.revokeFamilyOf(tok.RefreshToken)
	c := &http.Client{Transport: &latch.Transport{Source: src}}
	for i := range 2 {
		resp, err := c.Get(srv.URL + "/api/user")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("request %d: got HTTP %d, want a login-required error", i, resp.StatusCode)
		}
		if !errors.Is(err, latch.ErrLoginRequired) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("request %d: got %v, want ErrLoginRequired saying the grant was revoked", i, err)
		}
	}
	if _, err := st.Load(context.Background(), src.Key); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("the rejected set is still stored (%v)", err)
	}
}

// TestSourceInstallsRelogin (item 8): a long-lived Source whose credential
// was replaced by a new login (generation 0, a new lineage) installs it
// after the old token's 401, and Token returns the new login's token.
func TestSourceInstallsRelogin(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	old := srv.login()
	old.Lineage, old.Generation = "old", 5
	src := newSource(srv, st, old)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.revokeFamilyOf(old.RefreshToken) // logged out elsewhere
	relogin := srv.login()
	relogin.Lineage = "new"
	if err := storekit.Put(context.Background(), st, src.Key, relogin); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &latch.Transport{Source: src}}
	resp, err := c.Get(srv.URL + "/api/user")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the re-login: HTTP %d, want 200", resp.StatusCode)
	}
	got, err := src.Token(context.Background())
	if err != nil || got.AccessToken != relogin.AccessToken {
		t.Fatalf("Token() = %v, %v; want the new login's token", got, err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token calls = %d, want 0 (the new login was adopted)", n)
	}
}

// noLockStore is a Store that more than one process could reach but that
// offers no cross-process lock.
type noLockStore struct{ m storekit.Memory }

func (s *noLockStore) Load(ctx context.Context, k latch.Key) (*latch.Token, error) {
	return s.m.Load(ctx, k)
}
func (s *noLockStore) Save(ctx context.Context, k latch.Key, old, t *latch.Token) error {
	return s.m.Save(ctx, k, old, t)
}
func (s *noLockStore) Delete(ctx context.Context, k latch.Key, old *latch.Token) error {
	return s.m.Delete(ctx, k, old)
}

// TestSourceRefusesStoreWithoutLocker: a Store without a Locker is refused
// before any grant is sent, not reduced to in-process locking.
func TestSourceRefusesStoreWithoutLocker(t *testing.T) {
	srv := newRotatingServer(t)
	src := newSource(srv, &noLockStore{}, expired(srv.login()))
	if _, err := src.Token(context.Background()); !errors.Is(err, latch.ErrNoLocker) {
		t.Fatalf("got %v, want ErrNoLocker", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token calls = %d, want 0", n)
	}
}

// TestStoreCompareAndSwap: Save and Delete write only over the set they
// were derived from.
func TestStoreCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	st := &storekit.Memory{}
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	a := &latch.Token{AccessToken: "a", RefreshToken: "ra", Lineage: "l", Generation: 1}
	b := &latch.Token{AccessToken: "b", RefreshToken: "rb", Lineage: "l", Generation: 2}
	if err := st.Save(ctx, k, nil, a); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, k, nil, b); !errors.Is(err, latch.ErrConflict) {
		t.Fatalf("save over a with nil old: got %v, want ErrConflict", err)
	}
	if err := st.Save(ctx, k, b, b); !errors.Is(err, latch.ErrConflict) {
		t.Fatalf("save over a with old b: got %v, want ErrConflict", err)
	}
	if err := st.Save(ctx, k, a, b); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, k, a); !errors.Is(err, latch.ErrConflict) {
		t.Fatalf("delete b with old a: got %v, want ErrConflict", err)
	}
	if err := st.Delete(ctx, k, b); err != nil {
		t.Fatal(err)
	}
}

// TestLockBoundsOrdered: a waiter never gives up on a holder that is still
// within its own bound, and Check refuses every order that breaks it.
func TestLockBoundsOrdered(t *testing.T) {
	if err := latch.DefaultTimeouts.Check(); err != nil {
		t.Fatalf("DefaultTimeouts: %v", err)
	}
	d := latch.DefaultTimeouts
	for name, bad := range map[string]latch.Timeouts{
		"waiter gives up on a saving holder": {Token: d.Token, Refresh: d.Refresh, Save: d.Save, Lock: d.Refresh + d.Save},
		"token request outlasts the refresh": {Token: d.Refresh + 1, Refresh: d.Refresh, Save: d.Save, Lock: d.Lock},
		"no save bound":                      {Token: d.Token, Refresh: d.Refresh, Lock: d.Lock},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%s: Check(%+v) = nil, want an error", name, bad)
		}
	}
}

// TestTokenValuesValidated (item 9): token answers whose values could split
// a header, or whose token_type latch cannot send, are refused and never
// stored; the error names what was wrong.
func TestTokenValuesValidated(t *testing.T) {
	for _, tt := range []struct {
		name, body, want string
		typeErr          bool
	}{
		{"header injection in token_type", `{"access_token":"at","token_type":"Bearer\r\nX-Injected: 1"}`, `token_type "Bearer\r\nX-Injected: 1"`, true},
		{"control characters in access_token", `{"access_token":"a\n\r\u0000b","token_type":"Bearer"}`, "access_token has characters outside", false},
		{"control characters in refresh_token", `{"access_token":"at","refresh_token":"r\nX: 1","token_type":"Bearer"}`, "refresh_token has characters outside", false},
		{"DPoP", `{"access_token":"at","token_type":"DPoP"}`, `token_type "DPoP" is not supported`, true},
		{"mac", `{"access_token":"at","token_type":"mac"}`, `token_type "mac"`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cfg := &latch.Config{Issuer: srv.URL, ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
			tok, err := cfg.Refresh(context.Background(), "rt")
			if err == nil {
				t.Fatalf("got token %+v, want an error", tok)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var te *latch.TokenTypeError
			if errors.As(err, &te) != tt.typeErr {
				t.Errorf("error %T: TokenTypeError = %v, want %v", err, !tt.typeErr, tt.typeErr)
			}
			if strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Errorf("error %q carries control characters", err)
			}
		})
	}
}

// TestCancelledCallerNeverAbandonsASentGrant (item 1, the library side): a
// caller that gives up after the grant was sent gets its ctx error, while
// the flight saves the rotated set; Refreshing says so until Wait returns.
func TestCancelledCallerNeverAbandonsASentGrant(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	src := newSource(srv, st, expired(srv.login()))
	release := make(chan struct{})
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		<-release // the server has the grant; its answer comes late
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := src.Token(ctx); done <- err }()
	for srv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if !src.Refreshing() {
		t.Fatal("Refreshing() = false with a grant in flight")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller got %v, want context.Canceled", err)
	}
	close(release)
	if err := src.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.Refreshing() {
		t.Error("Refreshing() = true after Wait")
	}
	got, err := st.Load(context.Background(), src.Key)
	if err != nil || got.Generation != 1 {
		t.Fatalf("stored %+v, %v; want the rotated set (generation 1)", got, err)
	}
}

// TestRefusedFreshTokenIsNotRefreshedAgain: an endpoint that refuses every
// token with 401 costs one refresh, not one per request. The token a
// refresh after a 401 brought is refused too; that 401 is the answer, and
// the next request's 401 for the same token is no newer reason (each
// refresh would rotate the grant for nothing).
func TestRefusedFreshTokenIsNotRefreshedAgain(t *testing.T) {
	srv := newRotatingServer(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer api.Close()
	st := &storekit.Memory{}
	tok := srv.login()
	src := newSource(srv, st, tok)
	c := &http.Client{Transport: &latch.Transport{Source: src}}
	for i := range 5 {
		resp, err := c.Get(api.URL + "/always-401")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 401 || !strings.Contains(string(b), "no") {
			t.Fatalf("request %d: HTTP %d %q, want the server's 401", i, resp.StatusCode, b)
		}
		resp.Body.Close()
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("token calls = %d, want 1", n)
	}
	// Another process (a Source of its own) on the expired set: expiry is
	// a newer reason, so it refreshes (and once more for its own 401).
	cur, _ := st.Load(context.Background(), src.Key)
	exp := *cur
	exp.Expiry = time.Now().Add(-time.Second)
	if err := st.Save(context.Background(), src.Key, cur, &exp); err != nil {
		t.Fatal(err)
	}
	other := &http.Client{Transport: &latch.Transport{Source: &latch.Source{Config: srv.config(), Store: st, Key: src.Key}}}
	if resp, err := other.Get(api.URL + "/always-401"); err == nil {
		resp.Body.Close()
	}
	if n := srv.calls.Load(); n != 3 {
		t.Fatalf("token calls after expiry = %d, want 3", n)
	}
}
