package latch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
)

func newSource(srv *rotatingServer, st latch.Store, tok *latch.Token) *latch.Source {
	k := tok.Key()
	if err := st.Save(context.Background(), k, nil, tok); err != nil {
		panic(err)
	}
	return &latch.Source{Config: srv.config(), Store: st, Key: k, LoginHint: "run `latch auth login`"}
}

func expired(t *latch.Token) *latch.Token {
	t.Expiry = time.Now().Add(-time.Minute)
	t.IssuedAt = t.Expiry.Add(-time.Hour)
	return t
}

func TestSourceConcurrentExpiredOneRefresh(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	src := newSource(srv, st, expired(srv.login()))
	var wg sync.WaitGroup
	toks := make([]string, 1000)
	errs := make([]error, 1000)
	for i := range toks {
		wg.Go(func() {
			tok, err := src.Token(context.Background())
			if err == nil {
				toks[i] = tok.AccessToken
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
		if toks[i] != toks[0] {
			t.Fatalf("goroutine %d got %q, goroutine 0 got %q", i, toks[i], toks[0])
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
	stored, _ := st.Load(context.Background(), src.Key)
	if stored.AccessToken != toks[0] || stored.Generation != 1 {
		t.Errorf("store holds %q gen %d, want %q gen 1", stored.AccessToken, stored.Generation, toks[0])
	}
}

// TestSourceCompareAfterLock: another process rotated the token; this
// Source's cached token is stale. After a 401 it adopts the stored token
// without calling the server (which would be a reuse).
func TestSourceCompareAfterLock(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	a := newSource(srv, st, tok)
	b := &latch.Source{Config: srv.config(), Store: st, Key: a.Key}
	stale, err := a.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// b is "another process": it refreshes after its own 401.
	fresh, err := b.Refresh(context.Background(), stale)
	if err != nil {
		t.Fatal(err)
	}
	var events []latch.RefreshEvent
	a.OnRefresh = func(ev latch.RefreshEvent) { events = append(events, ev) }
	got, err := a.Refresh(context.Background(), stale)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != fresh.AccessToken {
		t.Errorf("got %q, want the sibling's %q", got.AccessToken, fresh.AccessToken)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
	if srv.reuses.Load() != 0 {
		t.Error("server saw a reused refresh token")
	}
	if len(events) != 1 || events[0].Kind != "adopted" {
		t.Errorf("events = %+v, want one adopted", events)
	}
}

func TestSourceTerminalClearsOnlyUnchanged(t *testing.T) {
	for _, tt := range []struct {
		name        string
		replaced    bool // a login wrote a new credential while the refresh was in flight
		wantDeleted bool
	}{
		{"unchanged: dead grant removed", false, true},
		{"replaced by a new login: kept", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotatingServer(t)
			st := &storekit.Memory{}
			src := newSource(srv, st, expired(srv.login()))
			relogin := srv.login()
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if tt.replaced {
					// A writer that ignores the lock, so the refresher's
					// compare-and-swap is what keeps the new login.
					cur, _ := st.Load(context.Background(), src.Key)
					st.Save(context.Background(), src.Key, cur, relogin)
				}
				writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
				return true
			}
			_, err := src.Token(context.Background())
			if !errors.Is(err, latch.ErrLoginRequired) {
				t.Fatalf("got %v, want ErrLoginRequired", err)
			}
			var lr *latch.LoginRequiredError
			if !errors.As(err, &lr) || lr.Hint != "run `latch auth login`" {
				t.Errorf("error %q lacks the hint", err)
			}
			got, lerr := st.Load(context.Background(), src.Key)
			if deleted := errors.Is(lerr, latch.ErrNotFound); deleted != tt.wantDeleted {
				t.Fatalf("deleted = %v, want %v", deleted, tt.wantDeleted)
			}
			if tt.replaced && got.RefreshToken != relogin.RefreshToken {
				t.Errorf("store holds %q, want the new login's token", got.RefreshToken)
			}
		})
	}
}

// TestSourceEarlyRefusalClearsNothing: a server that answers an early
// refresh with 400 invalid_grant while the access token is still valid
// (seen in the wild) leaves the whole set in place: the access token is
// used until it expires, the refresh token stays for the refresh at
// expiry, which alone decides, and the server is not asked again on
// every request meanwhile.
func TestSourceEarlyRefusalClearsNothing(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	tok.Expiry = time.Now().Add(10 * time.Second) // inside the skew
	tok.IssuedAt = tok.Expiry.Add(-time.Hour)
	src := newSource(srv, st, tok)
	var refused atomic.Int32
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		refused.Add(1)
		writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
		return true
	}
	for range 3 {
		got, err := src.Token(context.Background())
		if err != nil || got.AccessToken != tok.AccessToken {
			t.Fatalf("got %v, %v; want the still-valid access token", got, err)
		}
	}
	if n := refused.Load(); n != 1 {
		t.Errorf("token calls = %d, want 1 (not one per request)", n)
	}
	stored, err := st.Load(context.Background(), src.Key)
	if err != nil || stored.AccessToken != tok.AccessToken || stored.RefreshToken != tok.RefreshToken || stored.Revoked != "" {
		t.Errorf("store holds %+v, %v; want the whole set kept", stored, err)
	}
}

func TestSourceTransientKeepsRefreshToken(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(w http.ResponseWriter)
	}{
		{"503", func(w http.ResponseWriter) { w.WriteHeader(503) }},
		{"429", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "1"); w.WriteHeader(429) }},
		{"html 500", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			w.Write([]byte("<html>oops</html>"))
		}},
		{"dropped connection", func(w http.ResponseWriter) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		}},
		{"temporarily_unavailable", func(w http.ResponseWriter) {
			writeJSON(w, 503, map[string]any{"error": "temporarily_unavailable"})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotatingServer(t)
			st := &storekit.Memory{}
			tok := expired(srv.login())
			src := newSource(srv, st, tok)
			src.Retries = -1
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool { tt.answer(w); return true }
			_, err := src.Token(context.Background())
			if err == nil || errors.Is(err, latch.ErrLoginRequired) || latch.IsTerminal(err) {
				t.Fatalf("got %v, want a transient error", err)
			}
			stored, _ := st.Load(context.Background(), src.Key)
			if stored == nil || stored.RefreshToken != tok.RefreshToken {
				t.Errorf("refresh token not kept: %+v", stored)
			}
		})
	}
}

func TestSourceReadOnlyStoreSpendsNothing(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	src := newSource(srv, st, expired(srv.login()))
	st.ReadOnly = true
	_, err := src.Token(context.Background())
	if !errors.Is(err, latch.ErrStoreReadOnly) {
		t.Fatalf("got %v, want ErrStoreReadOnly", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token endpoint calls = %d, want 0", n)
	}
}

func TestSourceEarlyRefresh(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	now := time.Now()
	tok := srv.login()
	tok.IssuedAt, tok.Expiry = now.Add(-50*time.Minute), now.Add(10*time.Minute)
	src := newSource(srv, st, tok)
	src.Now = func() time.Time { return now }

	src.Skew = 5 * time.Minute
	got, err := src.Token(context.Background())
	if err != nil || got.AccessToken != tok.AccessToken || srv.calls.Load() != 0 {
		t.Fatalf("outside the skew: got %v, %v, %d calls; want the same token, no call", got, err, srv.calls.Load())
	}
	now = now.Add(6 * time.Minute) // 4 minutes left, inside the skew
	got, err = src.Token(context.Background())
	if err != nil || got.AccessToken == tok.AccessToken || srv.calls.Load() != 1 {
		t.Fatalf("inside the skew: got %v, %v, %d calls; want a new token from 1 call", got, err, srv.calls.Load())
	}
}

func TestSourceEarlyRefreshFailureKeepsValidToken(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	tok.Expiry = time.Now().Add(20 * time.Second)
	tok.IssuedAt = tok.Expiry.Add(-time.Hour)
	src := newSource(srv, st, tok)
	src.Retries = -1
	var kept []error
	src.OnRefresh = func(ev latch.RefreshEvent) {
		if ev.Kind == "kept" {
			kept = append(kept, ev.Err)
		}
	}
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(503); return true }
	got, err := src.Token(context.Background())
	if err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("got %v, %v; want the still-valid token", got, err)
	}
	if len(kept) != 1 {
		t.Errorf("kept events = %d, want 1", len(kept))
	}
}

// TestSourceShortLivedTokenSkew: a 2 s token is not refreshed on every
// request just because the default skew is longer than its life.
func TestSourceShortLivedTokenSkew(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	now := time.Now()
	tok := srv.login()
	tok.IssuedAt, tok.Expiry = now, now.Add(2*time.Second)
	src := newSource(srv, st, tok)
	src.Now = func() time.Time { return now }
	if _, err := src.Token(context.Background()); err != nil || srv.calls.Load() != 0 {
		t.Fatalf("got %v with %d calls, want no refresh at issue time", err, srv.calls.Load())
	}
	now = now.Add(1600 * time.Millisecond) // within a quarter of the life
	if _, err := src.Token(context.Background()); err != nil || srv.calls.Load() != 1 {
		t.Fatalf("got %v with %d calls, want one early refresh", err, srv.calls.Load())
	}
}

func TestSourceWaiterHonoursContext(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	src := newSource(srv, st, expired(srv.login()))
	release := make(chan struct{})
	entered := make(chan struct{})
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		close(entered)
		<-release
		return false // then rotate normally
	}
	first := make(chan error, 1)
	go func() { _, err := src.Token(context.Background()); first <- err }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { _, err := src.Token(ctx); waiter <- err }()
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter got %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first caller: %v", err)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
}

func TestSourceBoundToIssuer(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := expired(srv.login())
	tok.Issuer = "https://other.example"
	src := newSource(srv, st, tok)
	src.Key = tok.Key()
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("got nil error for a credential from another issuer")
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token endpoint calls = %d, want 0", n)
	}
}

func TestSourceNoCredential(t *testing.T) {
	srv := newRotatingServer(t)
	src := &latch.Source{Config: srv.config(), Store: &storekit.Memory{}, Key: latch.Key{Issuer: srv.URL, ClientID: "cli"}, LoginHint: "run `latch auth login`"}
	_, err := src.Token(context.Background())
	if !errors.Is(err, latch.ErrLoginRequired) || err.Error() != "login required; run `latch auth login`" {
		t.Errorf("got %q, want login required with the hint", err)
	}
}

func TestSourceExpiredWithoutRefreshToken(t *testing.T) {
	srv := newRotatingServer(t)
	tok := expired(srv.login())
	tok.RefreshToken = ""
	src := newSource(srv, &storekit.Memory{}, tok)
	if _, err := src.Token(context.Background()); !errors.Is(err, latch.ErrLoginRequired) {
		t.Errorf("got %v, want ErrLoginRequired", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token endpoint calls = %d, want 0", n)
	}
}

func TestStaticTokenIsNeverRefreshed(t *testing.T) {
	srv := newRotatingServer(t)
	var seen atomic.Value
	tr := &latch.Transport{Source: latch.StaticToken("user-supplied"), Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen.Store(r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 401, Body: http.NoBody, Request: r}, nil
	})}
	req, _ := http.NewRequest("GET", srv.URL+"/api/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("got %v, %v; want the 401 itself", resp, err)
	}
	if seen.Load() != "Bearer user-supplied" {
		t.Errorf("server saw %q", seen.Load())
	}
	if srv.calls.Load() != 0 {
		t.Error("a static token was refreshed")
	}
}

func TestOAuth2Adapter(t *testing.T) {
	srv := newRotatingServer(t)
	tok := srv.login()
	src := newSource(srv, &storekit.Memory{}, tok)
	ot, err := latch.OAuth2(context.Background(), src).Token()
	if err != nil {
		t.Fatal(err)
	}
	if ot.AccessToken != tok.AccessToken || ot.RefreshToken != "" || !ot.Valid() {
		t.Errorf("got %+v; want the access token, valid, without the refresh token", ot)
	}
}

// TestSourceRetriesUnprocessed: answers that say the grant was not
// processed (503, 429 with Retry-After) are retried a bounded number of
// times; answers that may have been processed are not.
func TestSourceRetriesUnprocessed(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failures  int
		answer    func(w http.ResponseWriter)
		wantCalls int64
		wantOK    bool
	}{
		{"503 twice then ok", 2, func(w http.ResponseWriter) { w.WriteHeader(503) }, 3, true},
		{"429 with Retry-After then ok", 1, func(w http.ResponseWriter) { w.Header().Set("Retry-After", "0"); w.WriteHeader(429) }, 2, true},
		{"503 past the bound", 10, func(w http.ResponseWriter) { w.WriteHeader(503) }, 1 + 3, false},
		// The answer may have been lost after a rotation: one retry, at once.
		{"500 is retried once", 10, func(w http.ResponseWriter) { w.WriteHeader(500) }, 2, false},
		{"502 html is retried once", 10, func(w http.ResponseWriter) { w.WriteHeader(502) }, 2, false},
		{"500 then ok", 1, func(w http.ResponseWriter) { w.WriteHeader(500) }, 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotatingServer(t)
			st := &storekit.Memory{}
			tok := expired(srv.login())
			src := newSource(srv, st, tok)
			var n atomic.Int32
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if int(n.Add(1)) <= tt.failures {
					tt.answer(w)
					return true
				}
				return false
			}
			_, err := src.Token(context.Background())
			if (err == nil) != tt.wantOK {
				t.Fatalf("got %v, want ok=%v", err, tt.wantOK)
			}
			if c := srv.calls.Load(); c != tt.wantCalls {
				t.Errorf("token calls = %d, want %d", c, tt.wantCalls)
			}
			stored, _ := st.Load(context.Background(), src.Key)
			if !tt.wantOK && stored.RefreshToken != tok.RefreshToken {
				t.Error("refresh token not kept after a transient failure")
			}
		})
	}
}

// TestSourceTerminalAfter401DropsAll: when the server rejected the access
// token (401) and then the grant (invalid_grant), nothing that is left
// works, so nothing is kept, even though the expiry says otherwise.
func TestSourceTerminalAfter401DropsAll(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	src := newSource(srv, st, tok)
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
		return true
	}
	if _, err := src.Refresh(context.Background(), tok); !errors.Is(err, latch.ErrLoginRequired) {
		t.Fatalf("got %v, want ErrLoginRequired", err)
	}
	if _, err := st.Load(context.Background(), src.Key); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("credential still stored (%v); want it deleted", err)
	}
}

// failingSaveStore passes CheckWrite but fails Save, as a disk that fills
// between the check and the write would.
type failingSaveStore struct{ storekit.Memory }

func (s *failingSaveStore) Save(ctx context.Context, k latch.Key, old, t *latch.Token) error {
	if t.Generation > 0 {
		return errors.New("no space left on device")
	}
	return s.Memory.Save(ctx, k, old, t)
}

// TestSourceSaveFailureIsAnError: a rotated set that cannot be persisted
// is an error, never a warning, and the new access token is not used.
func TestSourceSaveFailureIsAnError(t *testing.T) {
	srv := newRotatingServer(t)
	st := &failingSaveStore{}
	src := newSource(srv, st, expired(srv.login()))
	tok, err := src.Token(context.Background())
	if err == nil {
		t.Fatalf("got token %q and no error; want the save failure", tok.AccessToken)
	}
	if want := "no space left on device"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "is spent") || !errors.Is(err, latch.ErrLoginRequired) {
		t.Errorf("error %q; want it to name the cause and the fix", err)
	}
}

// countingStore counts Loads.
type countingStore struct {
	storekit.Memory
	loads atomic.Int32
}

func (s *countingStore) Load(ctx context.Context, k latch.Key) (*latch.Token, error) {
	s.loads.Add(1)
	time.Sleep(20 * time.Millisecond) // a slow store widens the window for a herd
	return s.Memory.Load(ctx, k)
}

// TestSourceReadsStoreOnce: many requests at the start of a command share
// one store read (bk read its store once per layer).
func TestSourceReadsStoreOnce(t *testing.T) {
	srv := newRotatingServer(t)
	st := &countingStore{}
	src := newSource(srv, st, srv.login())
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if _, err := src.Token(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := st.loads.Load(); n != 1 {
		t.Errorf("store loads = %d, want 1", n)
	}
}

// A public client (AuthStyleNone) never sends a client secret: not the
// Config's, and not one stored with the credential by an older version.
func TestAuthStyleNoneSendsNoSecret(t *testing.T) {
	srv := newRotatingServer(t)
	var forms []string
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		r.ParseForm()
		_, _, basic := r.BasicAuth()
		forms = append(forms, r.PostForm.Encode()+fmt.Sprintf(" basic=%v", basic))
		return false
	}
	st := &storekit.Memory{}
	tok := expired(srv.login())
	tok.ClientSecret = "stored-secret-0123456789"
	src := newSource(srv, st, tok)
	src.Config.ClientSecret = "config-secret-0123456789"
	src.Config.Endpoint.AuthStyle = latch.AuthStyleNone
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(forms) != 1 || strings.Contains(forms[0], "secret") || !strings.Contains(forms[0], "client_id=") || strings.Contains(forms[0], "basic=true") {
		t.Fatalf("token requests: %q; want client_id only, no secret", forms)
	}
}

// TestSourceInteractionRequiredKeepsRefreshToken: interaction_required,
// login_required and consent_required (OIDC Core §3.1.2.6) mean "log in
// again", not "try again", and the refresh token stays stored: it may
// work once the user has satisfied the server's policy.
func TestSourceInteractionRequiredKeepsRefreshToken(t *testing.T) {
	for _, code := range []string{"interaction_required", "login_required", "consent_required"} {
		t.Run(code, func(t *testing.T) {
			srv := newRotatingServer(t)
			st := &storekit.Memory{}
			tok := expired(srv.login())
			src := newSource(srv, st, tok)
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
				writeJSON(w, 400, map[string]any{"error": code})
				return true
			}
			_, err := src.Token(context.Background())
			if !errors.Is(err, latch.ErrLoginRequired) || !latch.NeedsInteraction(err) || latch.IsTerminal(err) {
				t.Fatalf("got %v, want ErrLoginRequired for %s, not terminal", err, code)
			}
			stored, _ := st.Load(context.Background(), src.Key)
			if stored == nil || stored.RefreshToken != tok.RefreshToken {
				t.Fatalf("refresh token not kept: %+v", stored)
			}
			// Once the user satisfied the policy, the same token works.
			srv.hook = nil
			if _, err := src.Token(context.Background()); err != nil {
				t.Errorf("after the policy is met: %v", err)
			}
		})
	}
}

// countingLocks is a MemoryStore that counts Lock calls.
type countingLocks struct {
	*storekit.Memory
	locks atomic.Int64
}

func (s *countingLocks) Lock(ctx context.Context, k latch.Key) (func(), error) {
	s.locks.Add(1)
	return s.Memory.Lock(ctx, k)
}

// TestSourceWaiterAdoptsWithoutTheLock: while one process redeems, the
// others wait for it without queueing for the lock (latch.Waiter), and
// adopt the set it saved the moment it lands: one token call, one lock.
// Before Waiter every one of them took the lock in turn only to re-read.
func TestSourceWaiterAdoptsWithoutTheLock(t *testing.T) {
	srv := newRotatingServer(t)
	st := &countingLocks{Memory: &storekit.Memory{}}
	holder := newSource(srv, st, expired(srv.login()))
	inRedeem, release := make(chan struct{}), make(chan struct{})
	srv.hook = func(http.ResponseWriter, *http.Request) bool {
		close(inRedeem)
		<-release
		return false
	}
	done := make(chan error, 1)
	go func() {
		_, err := holder.Token(context.Background())
		done <- err
	}()
	<-inRedeem
	const n = 8
	var wg sync.WaitGroup
	kinds := make([]latch.EventKind, n)
	toks := make([]string, n)
	for i := range n {
		src := &latch.Source{Config: srv.config(), Store: st, Key: holder.Key,
			OnRefresh: func(ev latch.RefreshEvent) { kinds[i] = ev.Kind }}
		wg.Go(func() {
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			toks[i] = tok.AccessToken
		})
	}
	time.Sleep(50 * time.Millisecond) // the waiters reach Wait
	close(release)
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stored, _ := st.Load(context.Background(), holder.Key)
	for i := range n {
		if toks[i] != stored.AccessToken || kinds[i] != latch.Adopted {
			t.Errorf("waiter %d: token %q (%s), want the holder's saved %q (adopted)", i, toks[i], kinds[i], stored.AccessToken)
		}
	}
	if c := srv.calls.Load(); c != 1 {
		t.Errorf("token endpoint calls = %d, want 1", c)
	}
	if l := st.locks.Load(); l != 1 {
		t.Errorf("Lock calls = %d, want 1 (the holder's): the waiters queued for the lock", l)
	}
}

// TestSourceRenew: Renew redeems a set that is still fresh (keep-alive),
// adopts with no call a newer set a sibling saved, and a refusal while
// the access token works keeps the whole set.
func TestSourceRenew(t *testing.T) {
	srv := newRotatingServer(t)
	st := &storekit.Memory{}
	tok := srv.login()
	src := newSource(srv, st, tok)
	got, err := src.Renew(context.Background())
	if err != nil || got.AccessToken == tok.AccessToken || srv.calls.Load() != 1 {
		t.Fatalf("renew of a fresh set: got %v, %v with %d calls; want a new set from 1 call", got, err, srv.calls.Load())
	}
	if stored, _ := st.Load(context.Background(), src.Key); !stored.Matches(got) {
		t.Fatalf("store holds generation %d, want the renewed set", stored.Generation)
	}

	sibling := &latch.Source{Config: srv.config(), Store: st, Key: src.Key}
	newer, err := sibling.Renew(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv.calls.Store(0)
	got, err = src.Renew(context.Background())
	if err != nil || got.AccessToken != newer.AccessToken || srv.calls.Load() != 0 {
		t.Fatalf("after a sibling's renewal: got %v, %v with %d calls; want its set adopted, no call", got, err, srv.calls.Load())
	}

	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
		return true
	}
	if _, err := src.Renew(context.Background()); !latch.IsTerminal(err) || errors.Is(err, latch.ErrLoginRequired) {
		t.Fatalf("refused renewal: got %v; want the terminal refusal, not login required", err)
	}
	stored, err := st.Load(context.Background(), src.Key)
	if err != nil || !stored.Matches(newer) || stored.Revoked != "" {
		t.Errorf("after a refused renewal the store holds %+v, %v; want the whole set kept", stored, err)
	}
	if srv.reuses.Load() != 0 {
		t.Errorf("reuses = %d, want 0", srv.reuses.Load())
	}
}

// TestSourceEarlyRefusalAsTokenExpires: the server refuses an early
// refresh and the access token expires before the answer is read. The
// caller must not get the raw refusal (exit 1 in the CLI) or the expired
// token: the refresh at expiry decides, at once.
func TestSourceEarlyRefusalAsTokenExpires(t *testing.T) {
	for _, tt := range []struct {
		name      string
		refusals  int32
		wantLogin bool
	}{
		{"refused again at expiry", 2, true},
		{"accepted at expiry", 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotatingServer(t)
			st := &storekit.Memory{}
			start := time.Now()
			var now atomic.Int64
			now.Store(start.UnixNano())
			tok := srv.login()
			tok.IssuedAt, tok.Expiry = start.Add(-time.Hour), start.Add(10*time.Second) // inside the skew
			src := newSource(srv, st, tok)
			src.Now = func() time.Time { return time.Unix(0, now.Load()) }
			var calls atomic.Int32
			srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if calls.Add(1) > tt.refusals {
					return false
				}
				now.Store(start.Add(time.Minute).UnixNano()) // expires while refused
				writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
				return true
			}
			got, err := src.Token(context.Background())
			if tt.wantLogin {
				if !errors.Is(err, latch.ErrLoginRequired) {
					t.Fatalf("got %v, %v; want ErrLoginRequired", got, err)
				}
			} else if err != nil || got.AccessToken == tok.AccessToken {
				t.Fatalf("got %v, %v; want the set the refresh at expiry brought", got, err)
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("token calls = %d, want 2 (early, then at expiry)", n)
			}
		})
	}
}
