package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
)

var testKey = latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "acme"}

// rotating is a token endpoint that rotates the refresh token on every
// refresh and counts reuse of a spent one.
type rotating struct {
	mu       sync.Mutex
	live     string
	n, reuse int
}

func (r *rotating) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.FormValue("refresh_token") != r.live {
		r.reuse++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
		return
	}
	r.n++
	r.live = fmt.Sprintf("rt-%d", r.n)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", r.n), "token_type": "Bearer",
		"refresh_token": r.live, "expires_in": 3 * 3600}) // fresh on the tests' clock, 2 h ahead
}

func stored(at string, expiry time.Time) *latch.Token {
	return &latch.Token{AccessToken: at, TokenType: "Bearer", RefreshToken: "rt-0", Expiry: expiry, ClientSecret: "s3cret",
		Issuer: testKey.Issuer, ClientID: testKey.ClientID, Account: testKey.Account, Lineage: "lin", Generation: 1}
}

// counting is a fleet store that counts its opens, as connections.
type counting struct {
	st    *storekit.Memory
	opens atomic.Int32
}

func (c *counting) cache(dir string) *Cache {
	box, _ := sealed.New(nil)
	return &Cache{Dir: dir, Box: box, Open: func(context.Context) (latch.Store, error) {
		c.opens.Add(1)
		return c.st, nil
	}}
}

func TestCacheServesCopyWithoutSecretsOrConnection(t *testing.T) {
	ctx := context.Background()
	fleet := &counting{st: &storekit.Memory{}}
	dir := t.TempDir()
	full := stored("at-live", time.Now().Add(time.Hour))
	if err := fleet.st.Save(ctx, testKey, nil, full); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.cache(dir).Load(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	if n := fleet.opens.Load(); n != 1 {
		t.Fatalf("the first load opened the fleet store %d times, want 1", n)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cred-"+hashOf(t, dir)+".token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"rt-0", "s3cret"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the machine's copy holds %q:\n%s", secret, raw)
		}
	}
	got, err := fleet.cache(dir).Load(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if n := fleet.opens.Load(); n != 1 {
		t.Errorf("a load with a fresh copy opened the fleet store (%d opens, want 1)", n)
	}
	if got.AccessToken != "at-live" || got.RefreshToken != "" || got.ClientSecret != "" || got.Generation != 1 {
		t.Errorf("copy = %+v, want the access token, generation 1, no refresh token or secret", got)
	}
}

// hashOf finds the one copy's name in dir.
func hashOf(t *testing.T, dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "cred-*.token"))
	if len(m) != 1 {
		t.Fatalf("copies in %s: %v, want 1", dir, m)
	}
	b := filepath.Base(m[0])
	return b[len("cred-") : len(b)-len(".token")]
}

// Under the lock the refresh is decided on the stored set: a copy there
// (no refresh token) would make a Source think the grant is gone and
// delete it.
func TestCacheLoadUnderLockReadsFleetStore(t *testing.T) {
	ctx := context.Background()
	fleet := &counting{st: &storekit.Memory{}}
	c := fleet.cache(t.TempDir())
	fleet.st.Save(ctx, testKey, nil, stored("at-live", time.Now().Add(time.Hour)))
	c.Load(ctx, testKey) // keeps a copy
	unlock, err := c.Lock(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(ctx, testKey)
	unlock()
	if err != nil || got.RefreshToken != "rt-0" {
		t.Fatalf("Load under the lock = %+v, %v; want the fleet store's set with its refresh token", got, err)
	}
	if got, _ := c.Load(ctx, testKey); got.RefreshToken != "" {
		t.Errorf("after unlock, Load = %+v; want the copy again", got)
	}
}

func TestCacheExpiredCopyWithoutConnection(t *testing.T) {
	ctx := context.Background()
	fleet := &counting{st: &storekit.Memory{}}
	dir := t.TempDir()
	fleet.st.Save(ctx, testKey, nil, stored("at-live", time.Now().Add(time.Hour)))
	fleet.cache(dir).Load(ctx, testKey)
	later := fleet.cache(dir)
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	got, err := later.Load(ctx, testKey)
	if err != nil || got.AccessToken != "at-live" || got.RefreshToken != "" {
		t.Fatalf("Load of an expired copy = %+v, %v; want the copy", got, err)
	}
	if n := fleet.opens.Load(); n != 1 {
		t.Errorf("an expired copy opened the fleet store (%d opens, want 1): the Source's Wait and Lock decide who connects", n)
	}
	// Within the early-refresh margin but not expired: the fleet store,
	// so a Source there refreshes early as it would without copies.
	soon := fleet.cache(dir)
	soon.Now = func() time.Time { return time.Now().Add(time.Hour - 30*time.Second) }
	if got, _ := soon.Load(ctx, testKey); got.RefreshToken != "rt-0" {
		t.Errorf("Load within the margin = %+v; want the fleet store's set", got)
	}
}

func TestCacheForgetAndLogout(t *testing.T) {
	ctx := context.Background()
	fleet := &counting{st: &storekit.Memory{}}
	dir := t.TempDir()
	fleet.st.Save(ctx, testKey, nil, stored("at-live", time.Now().Add(time.Hour)))
	c := fleet.cache(dir)
	c.Load(ctx, testKey)
	if err := c.Forget(testKey); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.token")); len(m) != 0 {
		t.Fatalf("copies after Forget: %v", m)
	}
	// Logged out elsewhere: the fleet store's answer removes the copy.
	c.Load(ctx, testKey)
	cur, _ := fleet.st.Load(ctx, testKey)
	fleet.st.Delete(ctx, testKey, cur)
	unlock, _ := c.Lock(ctx, testKey)
	_, err := c.Load(ctx, testKey)
	unlock()
	if !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Load under the lock after a logout elsewhere: %v, want ErrNotFound", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.token")); len(m) != 0 {
		t.Errorf("copies after the fleet store said not found: %v", m)
	}
}

// TestCacheStorm is 4 machines × 8 processes, each with its own Source
// and Cache, on an expired token: one refresh, no reuse, and far fewer
// connections than processes (one per machine, and any process that came
// after its machine's leader had let go).
func TestCacheStorm(t *testing.T) {
	const machines, perMachine = 4, 8
	ctx := context.Background()
	rs := &rotating{live: "rt-0"}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	cfg := &latch.Config{Issuer: testKey.Issuer, ClientID: testKey.ClientID, Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
	fleet := &counting{st: &storekit.Memory{}}
	fleet.st.Save(ctx, testKey, nil, stored("at-0", time.Now().Add(time.Hour)))
	dirs := make([]string, machines)
	for i := range dirs {
		dirs[i] = t.TempDir()
		fleet.cache(dirs[i]).Load(ctx, testKey) // each machine has its copy
	}
	fleet.opens.Store(0)
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	var wg sync.WaitGroup
	got := make([]string, machines*perMachine)
	for i := range got {
		wg.Go(func() {
			c := fleet.cache(dirs[i%machines])
			c.Now = later
			src := &latch.Source{Config: cfg, Store: c, Key: testKey, Now: later}
			tok, err := src.Token(ctx)
			if err != nil {
				t.Errorf("process %d: %v", i, err)
				return
			}
			got[i] = tok.AccessToken
		})
	}
	wg.Wait()
	if rs.n != 1 || rs.reuse != 0 {
		t.Fatalf("%d refreshes and %d reuses, want 1 and 0", rs.n, rs.reuse)
	}
	for i, at := range got {
		if at != "at-1" {
			t.Errorf("process %d got %q, want at-1", i, at)
		}
	}
	opens := fleet.opens.Load()
	t.Logf("%d processes on %d machines opened the fleet store %d times", machines*perMachine, machines, opens)
	if opens > 2*machines {
		t.Errorf("the fleet store was opened %d times for %d processes: the machine's lock did not hold them back", opens, machines*perMachine)
	}
	if s, _ := fleet.st.Load(ctx, testKey); s.RefreshToken != "rt-1" || s.ClientSecret != "s3cret" {
		t.Errorf("the fleet store holds %+v, want the rotated set with its secret", s)
	}
}

// forgetting is a fleet store whose Load lets a login on this machine
// replace the set (and forget the copy) while the read is on its way.
type forgetting struct {
	*storekit.Memory
	c *Cache
}

func (f forgetting) Load(ctx context.Context, k latch.Key) (*latch.Token, error) {
	t, err := f.Memory.Load(ctx, k)
	f.c.Forget(k)
	return t, err
}

// TestCacheLoadDoesNotRestoreForgotten: a Load that read the fleet store
// before a login or logout here forgot the copy does not write the
// replaced set back.
func TestCacheLoadDoesNotRestoreForgotten(t *testing.T) {
	ctx := context.Background()
	st := &storekit.Memory{}
	st.Save(ctx, testKey, nil, stored("at-old", time.Now().Add(time.Hour)))
	box, _ := sealed.New(nil)
	c := &Cache{Dir: t.TempDir(), Box: box}
	c.Open = func(context.Context) (latch.Store, error) { return forgetting{st, c}, nil }
	if _, err := c.Load(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(c.Dir, "*.token")); len(m) != 0 {
		t.Errorf("a Load that raced a Forget wrote the replaced set back: %v", m)
	}
}
