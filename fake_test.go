package latch_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"golang.org/x/oauth2"
)

// rotatingServer is a unit-test fake of a rotating token endpoint: every
// refresh token can be redeemed once; a reused one gets invalid_grant and
// revokes its family. End-to-end tests use the real dev server instead.
type rotatingServer struct {
	*httptest.Server
	calls  atomic.Int64
	reuses atomic.Int64
	// hook, when set, may answer a token request itself (return true).
	hook func(w http.ResponseWriter, r *http.Request) bool
	ttl  time.Duration

	mu      sync.Mutex
	next    int
	refresh map[string]*family // live and spent refresh tokens
	access  map[string]*family
}

type family struct {
	revoked bool
	live    string // the refresh token that may still be redeemed
}

func newRotatingServer(t testing.TB) *rotatingServer {
	s := &rotatingServer{refresh: map[string]*family{}, access: map[string]*family{}, ttl: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("/api/", s.api)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// login mints a fresh family and returns its token set.
func (s *rotatingServer) login() *latch.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &family{}
	at, rt := s.mint(f)
	return &latch.Token{AccessToken: at, RefreshToken: rt, TokenType: "Bearer",
		Expiry: time.Now().Add(s.ttl), IssuedAt: time.Now(), Issuer: s.URL, ClientID: "cli"}
}

func (s *rotatingServer) mint(f *family) (at, rt string) {
	s.next++
	at, rt = fmt.Sprintf("at-%d", s.next), fmt.Sprintf("rt-%d", s.next)
	f.live = rt
	s.refresh[rt] = f
	s.access[at] = f
	return at, rt
}

func (s *rotatingServer) config() *latch.Config {
	return &latch.Config{Issuer: s.URL, ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: s.URL + "/token"}}
}

func (s *rotatingServer) token(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if s.hook != nil && s.hook(w, r) {
		return
	}
	if r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("client_id") != "cli" {
		writeJSON(w, 400, map[string]any{"error": "invalid_request"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := r.PostFormValue("refresh_token")
	f := s.refresh[rt]
	switch {
	case f == nil || f.revoked:
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "unknown or revoked"})
		return
	case f.live != rt:
		s.reuses.Add(1)
		f.revoked = true
		writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "refresh token reused"})
		return
	}
	at, nrt := s.mint(f)
	writeJSON(w, 200, map[string]any{"access_token": at, "refresh_token": nrt, "token_type": "bearer",
		"expires_in": s.ttl.Seconds()})
}

// api answers 200 for a live access token and 401 otherwise.
func (s *rotatingServer) api(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	auth := r.Header.Get("Authorization")
	f := s.access[trimBearer(auth)]
	ok := f != nil && !f.revoked && s.isNewest(f, trimBearer(auth))
	s.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(401)
		return
	}
	w.WriteHeader(200)
}

// isNewest: only the newest access token of a family is valid.
func (s *rotatingServer) isNewest(f *family, at string) bool {
	return "rt-"+at[len("at-"):] == f.live
}

func trimBearer(v string) string {
	if len(v) > 7 {
		return v[7:]
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// revokeFamilyOf revokes the family of refresh token rt, as a server does
// when a grant is revoked (its access tokens stop working too).
func (s *rotatingServer) revokeFamilyOf(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.refresh[rt]; f != nil {
		f.revoked = true
	}
}
