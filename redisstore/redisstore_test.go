package redisstore

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/storetest"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestContract(t *testing.T) {
	r := testdb.StartRedis(t)
	st, err := Open(context.Background(), r.URL, Options{Key: key, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.Run(t, st, latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "acme"})
}

func TestSealedAtRestAndDown(t *testing.T) {
	r := testdb.StartRedis(t)
	ctx := context.Background()
	st, err := Open(ctx, r.URL, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	tok := storetest.Token(k, "lin", 0)
	if err := st.Save(ctx, k, nil, tok); err != nil {
		t.Fatal(err)
	}
	raw, err := st.rdb.Get(ctx, st.credKey(k)).Result()
	if err != nil || strings.Contains(raw, tok.AccessToken) || strings.Contains(raw, tok.RefreshToken) {
		t.Fatalf("the value shows a token (or %v)", err)
	}
	other, err := Open(ctx, r.URL, Options{Key: []byte("another-key-another-key-another-")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(ctx, k); !errors.Is(err, latch.ErrUnusable) {
		t.Fatalf("Load with another key: %v, want ErrUnusable", err)
	}
	if _, err := Open(ctx, r.URL, Options{}); err == nil || !strings.Contains(err.Error(), "no store key") {
		t.Fatalf("Open without a key: %v", err)
	}
	wrong := strings.Replace(r.URL, testdb.Password, "wrong-password-0123456789", 1)
	if _, err := Open(ctx, wrong, Options{Key: key}); err == nil || strings.Contains(err.Error(), "wrong-password-0123456789") {
		t.Fatalf("Open with a wrong password: %v", err)
	}
	r.Stop()
	_, err = st.Load(ctx, k)
	if !errors.Is(err, latch.ErrStoreUnavailable) || strings.Contains(err.Error(), testdb.Password) {
		t.Fatalf("Load with Redis down: %v", err)
	}
}

// TestWaiter: two Stores on one database, as two processes.
func TestWaiter(t *testing.T) {
	r := testdb.StartRedis(t)
	var sts [2]*Store
	for i := range sts {
		st, err := Open(context.Background(), r.URL, Options{Key: key, LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		sts[i] = st
	}
	storetest.RunWaiter(t, sts[0], sts[1], latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "wait"})
}

// TestStaleHolder is the child of TestLeaseLostWhileStopped.
func TestStaleHolder(t *testing.T) {
	url, dir := os.Getenv("REDISSTORE_HOLDER"), os.Getenv("REDISSTORE_DIR")
	if url == "" {
		t.Skip("a helper for TestLeaseLostWhileStopped")
	}
	ctx := context.Background()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	st, err := Open(ctx, url, Options{Key: key, Lease: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := st.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	base, err := st.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "locked"), nil, 0o600)
	waitFile(t, filepath.Join(dir, "go")) // stopped here, then resumed
	err = st.Save(ctx, k, base, storetest.Token(k, "lin", 7))
	msg := "saved"
	if err != nil {
		msg = err.Error()
	}
	os.WriteFile(filepath.Join(dir, "result"), []byte(msg), 0o600)
	unlock()
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Redis is down longer than the lock's lease while its holder redeems:
// after the restart the lock has lapsed, and the next process takes it.
// The fence the holder wrote first (CheckWrite) makes that process wait
// for the holder's save instead of redeeming the same refresh token (the
// issue's reproduction: reuse, family revoked, both exit 4).
func TestOutageLongerThanTheLease(t *testing.T) {
	r := testdb.StartDurableRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() *Store {
		st, err := Open(ctx, r.URL, Options{Key: key, Lease: 500 * time.Millisecond, LockTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	old := storetest.Token(k, "lin", 0)
	if err := a.Save(ctx, k, nil, old); err != nil {
		t.Fatal(err)
	}
	unlock, err := a.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := a.CheckWrite(ctx, k, 100); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	time.Sleep(time.Second) // two leases
	r.Start()
	got := make(chan *latch.Token, 1)
	go func() {
		unlock, err := b.Lock(ctx, k)
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		defer unlock()
		tok, _ := b.Load(ctx, k)
		got <- tok
	}()
	select {
	case tok := <-got:
		t.Fatalf("b took the lapsed lock while a's redeem was in flight, and loaded %+v", tok)
	case <-time.After(time.Second):
	}
	next := storetest.Token(k, "lin", 1)
	if err := a.Save(ctx, k, old, next); err != nil {
		t.Fatalf("a's save after the outage: %v", err)
	}
	if tok := <-got; tok == nil || tok.Generation != 1 {
		t.Fatalf("b loaded %+v under the lock, want a's generation 1", tok)
	}
}

// A lease shorter than a slow token request re-opens the race
// (oauth2-proxy PR #3456): the default lease outlasts a Source's whole
// refresh, token requests and save.
func TestDefaultLeaseOutlastsARefresh(t *testing.T) {
	if DefaultLease <= latch.DefaultTimeouts.Refresh+latch.DefaultTimeouts.Save {
		t.Fatalf("DefaultLease %s, a refresh may take %s", DefaultLease, latch.DefaultTimeouts.Refresh+latch.DefaultTimeouts.Save)
	}
}

// A password Redis refuses (WRONGPASS), or none where one is required
// (NOAUTH), is an *AuthError saying so in one line, not a transient "try
// again"; the password is never shown.
func TestWrongPassword(t *testing.T) {
	r := testdb.StartRedis(t)
	ctx := context.Background()
	for url, want := range map[string]string{
		strings.Replace(r.URL, testdb.Password, "not-"+testdb.Password, 1): "Redis refused the password for user default",
		strings.Replace(r.URL, ":"+testdb.Password+"@", "", 1):             "Redis requires a password",
	} {
		_, err := Open(ctx, url, Options{Key: key})
		var ae *AuthError
		if !errors.As(err, &ae) || errors.Is(err, latch.ErrStoreUnavailable) {
			t.Fatalf("Open with a wrong password: %v, want an *AuthError", err)
		}
		if msg := err.Error(); !strings.Contains(msg, want) || strings.Contains(msg, testdb.Password) || strings.Contains(msg, "\n") {
			t.Fatalf("Open with a wrong password: %q", msg)
		}
	}
}

// A lock holder that dies (SIGKILL) frees the lock when its connection
// closes, long before its lease (DefaultLease) runs out.
func TestLockFreedWhenHolderDies(t *testing.T) {
	r := testdb.StartDurableRedis(t)
	ctx := context.Background()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHoldRedisLock$")
	cmd.Env = append(os.Environ(), "REDISSTORE_LOCKER="+r.URL, "REDISSTORE_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(dir, "locked"))
	st, err := Open(ctx, r.URL, Options{Key: key, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Lock(ctx, k); !errors.Is(err, latch.ErrLockTimeout) {
		t.Fatalf("Lock while another process holds it: %v, want ErrLockTimeout", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	st.timeout = DefaultLease / 2
	start := time.Now()
	unlock, err := st.Lock(ctx, k)
	if err != nil {
		t.Fatalf("Lock after the holder died, waiting less than the lease: %v", err)
	}
	unlock()
	t.Logf("lock taken %s after the holder's SIGKILL", time.Since(start).Round(time.Millisecond))
}

// TestHoldRedisLock is the child of TestLockFreedWhenHolderDies.
func TestHoldRedisLock(t *testing.T) {
	url, dir := os.Getenv("REDISSTORE_LOCKER"), os.Getenv("REDISSTORE_DIR")
	if url == "" {
		t.Skip("a helper for TestLockFreedWhenHolderDies")
	}
	st, err := Open(context.Background(), url, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(context.Background(), latch.Key{Issuer: "https://as.example", ClientID: "cli"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "locked"), nil, 0o600)
	time.Sleep(time.Minute)
}
