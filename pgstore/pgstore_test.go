package pgstore

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/storetest"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestContract(t *testing.T) {
	pg := testdb.StartPostgres(t)
	st, err := Open(context.Background(), pg.URL, Options{Key: key, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.Run(t, st, latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "acme"})
}

// TestWaiter: two Stores on one database, as two processes.
func TestWaiter(t *testing.T) {
	pg := testdb.StartPostgres(t)
	var sts [2]*Store
	for i := range sts {
		st, err := Open(context.Background(), pg.URL, Options{Key: key, LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		sts[i] = st
	}
	storetest.RunWaiter(t, sts[0], sts[1], latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "wait"})
}

// The row alone reveals no token; the wrong key cannot open it (and says
// so, as an unusable credential); no key at all is refused.
func TestSealedAtRest(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx := context.Background()
	st, err := Open(ctx, pg.URL, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	tok := storetest.Token(k, "lin", 0)
	if err := st.Save(ctx, k, nil, tok); err != nil {
		t.Fatal(err)
	}
	var row string
	if err := st.pool.QueryRow(ctx, `SELECT encode(sealed, 'escape') FROM latch_credentials`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, tok.AccessToken) || strings.Contains(row, tok.RefreshToken) {
		t.Fatal("a token is readable in the row")
	}
	other, err := Open(ctx, pg.URL, Options{Key: []byte("another-key-another-key-another-")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Load(ctx, k); !errors.Is(err, latch.ErrUnusable) {
		t.Fatalf("Load with another key: %v, want ErrUnusable", err)
	}
	if _, err := Open(ctx, pg.URL, Options{}); err == nil || !strings.Contains(err.Error(), "no store key") {
		t.Fatalf("Open without a key: %v", err)
	}
}

// A database that is down is a transient error, and its password is never
// shown.
func TestDownAndRedacted(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx := context.Background()
	st, err := Open(ctx, pg.URL, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pg.Stop()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	_, err = st.Load(ctx, k)
	if !errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("Load with the database down: %v, want ErrStoreUnavailable", err)
	}
	for _, e := range []error{err, st.CheckWrite(ctx, k, 100)} {
		if e == nil || strings.Contains(e.Error(), testdb.Password) {
			t.Fatalf("error shows the password or is nil: %v", e)
		}
	}
	_, err = Open(ctx, pg.URL, Options{Key: key})
	if err == nil || strings.Contains(err.Error(), testdb.Password) || !errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("Open with the database down: %v", err)
	}
	if got := Redacted(pg.URL); strings.Contains(got, testdb.Password) {
		t.Fatalf("Redacted: %s", got)
	}
	pg.Start()
	if _, err := st.Load(ctx, k); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Load after the restart: %v", err)
	}
}

// A lock holder that dies (SIGKILL) frees the lock at once: the advisory
// lock ends with its connection.
func TestLockFreedWhenHolderDies(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx := context.Background()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHoldLock$")
	cmd.Env = append(os.Environ(), "PGSTORE_HOLDER="+pg.URL, "PGSTORE_READY="+filepath.Join(t.TempDir(), "ready"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := cmd.Env[len(cmd.Env)-1][len("PGSTORE_READY="):]
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := Open(ctx, pg.URL, Options{Key: key, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Lock(ctx, k); !errors.Is(err, latch.ErrLockTimeout) {
		t.Fatalf("Lock while another process holds it: %v, want ErrLockTimeout", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	st.timeout = 10 * time.Second
	start := time.Now()
	unlock, err := st.Lock(ctx, k)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	unlock()
	t.Logf("lock taken %s after the holder's SIGKILL", time.Since(start).Round(time.Millisecond))
}

// TestHoldLock is the child of TestLockFreedWhenHolderDies.
func TestHoldLock(t *testing.T) {
	url := os.Getenv("PGSTORE_HOLDER")
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
	os.WriteFile(os.Getenv("PGSTORE_READY"), nil, 0o600)
	time.Sleep(time.Minute)
}

// A database restart drops the advisory lock of a holder that is
// redeeming. The fence it wrote first (CheckWrite) makes the next holder
// wait for that holder's save instead of taking the lock and redeeming
// the same refresh token; a fence left behind by a holder that died holds
// the next one up only until the dead holder's refresh deadline.
func TestFenceAcrossRestart(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx := context.Background()
	open := func() *Store {
		st, err := Open(ctx, pg.URL, Options{Key: key, LockTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	a, b := open(), open()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	old := storetest.Token(k, "lin", 0)
	if err := a.Save(ctx, k, nil, old); err != nil {
		t.Fatal(err)
	}

	// a's fence, left by a holder that died redeeming (its unlock does not
	// clear it), holds b up until a's refresh deadline plus the save's.
	unlock, err := a.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if err := a.CheckWrite(rctx, k, 100); err != nil {
		t.Fatal(err)
	}
	rcancel()
	a.held[k].fenced = false // as if it died
	unlock()
	start := time.Now()
	unlockB, err := b.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	if waited, want := time.Since(start), latch.DefaultTimeouts.Save; waited < want || waited > want+5*time.Second {
		t.Fatalf("b waited %s for a dead holder's fence, want about %s", waited, want+500*time.Millisecond)
	}

	// a holds the lock and is about to redeem; the database restarts, and
	// b (a process started after it) takes the lock.
	unlockA, err := a.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	if err := a.CheckWrite(ctx, k, 100); err != nil {
		t.Fatal(err)
	}
	pg.Stop()
	pg.Start()
	b = open()
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
		t.Fatalf("b took the lock before a's save, and loaded %+v", tok)
	case <-time.After(500 * time.Millisecond):
	}
	next := storetest.Token(k, "lin", 1)
	if err := a.Save(ctx, k, old, next); err != nil {
		t.Fatalf("a's save after the restart: %v", err)
	}
	if tok := <-got; tok == nil || tok.Generation != 1 {
		t.Fatalf("b loaded %+v under the lock, want a's generation 1", tok)
	}
	if err := a.CheckWrite(ctx, k, 100); err == nil {
		t.Fatal("CheckWrite on a lock lost with its connection succeeded")
	}
}

// The lock excludes behind pgbouncer in both pool modes. In transaction
// mode a session advisory lock stays on a server connection that the
// next client is handed, so two holders were in at once (the 7
// refresh calls from 8 processes).
func TestLockBehindPoolers(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			pg := testdb.StartPostgres(t)
			url := testdb.StartPgBouncerMode(t, pg, mode).URL
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
			var mu sync.Mutex
			in, most, taken := 0, 0, 0
			var wg sync.WaitGroup
			for range 8 {
				st, err := Open(ctx, url, Options{Key: key, LockTimeout: 20 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(st.Close)
				wg.Go(func() {
					for range 3 {
						unlock, err := st.Lock(ctx, k)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						in++
						taken++
						most = max(most, in)
						mu.Unlock()
						// What a holder does: read, and record a redeem.
						if _, err := st.Load(ctx, k); !errors.Is(err, latch.ErrNotFound) {
							t.Errorf("Load under the lock: %v", err)
						}
						time.Sleep(20 * time.Millisecond)
						mu.Lock()
						in--
						mu.Unlock()
						unlock()
					}
				})
			}
			wg.Wait()
			if most != 1 || taken != 24 {
				t.Fatalf("pool_mode = %s: %d holders at once, %d of 24 locks taken; want 1, 24", mode, most, taken)
			}
		})
	}
}

// The lock holder's connection is cut mid-refresh (pg_terminate_backend,
// as idle_session_timeout or a TCP reset would): the next process finds
// the redeem in flight and waits for it instead of redeeming the same
// refresh token; the holder saves the set it redeemed over a new
// connection, and the next process adopts it.
func TestCutConnectionMidRefresh(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() *Store {
		st, err := Open(ctx, pg.URL, Options{Key: key, LockTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	a, b, admin := open(), open(), open()
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
	pid := a.held[k].conn.Conn().PgConn().PID()
	var killed bool
	if err := admin.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend: %v %v", killed, err)
	}
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
		t.Fatalf("b took the lock while a's redeem was in flight, and loaded %+v", tok)
	case <-time.After(time.Second):
	}
	next := storetest.Token(k, "lin", 1)
	if err := a.Save(ctx, k, old, next); err != nil {
		t.Fatalf("a's save after its connection was cut: %v", err)
	}
	if tok := <-got; tok == nil || tok.Generation != 1 {
		t.Fatalf("b loaded %+v under the lock, want a's generation 1", tok)
	}
}

// A password the server refuses (SQLSTATE class 28) is an *AuthError
// saying so in one line, not a transient "try again"; the password is
// never shown.
func TestWrongPassword(t *testing.T) {
	pg := testdb.StartPostgres(t)
	ctx := context.Background()
	url := strings.Replace(pg.URL, testdb.Password, "not-"+testdb.Password, 1)
	_, err := Open(ctx, url, Options{Key: key})
	var ae *AuthError
	if !errors.As(err, &ae) || errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("Open with a wrong password: %v, want an *AuthError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "PostgreSQL refused the password for user latch") || strings.Contains(msg, testdb.Password) || strings.Contains(msg, "\n") {
		t.Fatalf("Open with a wrong password: %q", msg)
	}
}

// More processes than the pooler has server connections: the waiters
// hold them all, so a holder that needed another server connection for
// its redeem record or its save would wait for one until every lock wait
// ran out (and, after its redeem, lose the set it could not save). A
// process uses one connection, and a waiter lets its server connection go
// between waits.
func TestMoreProcessesThanServerConnections(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			pg := testdb.StartPostgres(t)
			url := testdb.StartPgBouncerPool(t, pg, mode, 4).URL
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
			open := func() *Store {
				st, err := Open(ctx, url, Options{Key: key, LockTimeout: 20 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			holder := open()
			defer holder.Close()
			old := storetest.Token(k, "lin", 0)
			if err := holder.Save(ctx, k, nil, old); err != nil {
				t.Fatal(err)
			}
			unlock, err := holder.Lock(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			got := make(chan uint64, 30)
			for range 30 {
				wg.Go(func() {
					st, err := Open(ctx, url, Options{Key: key, LockTimeout: 20 * time.Second})
					if err != nil {
						t.Error(err)
						return
					}
					defer st.Close()
					unlock, err := st.Lock(ctx, k)
					if err != nil {
						t.Error(err)
						return
					}
					defer unlock()
					cur, err := st.Load(ctx, k)
					if err != nil {
						t.Error(err)
						return
					}
					got <- cur.Generation
				})
			}
			time.Sleep(time.Second) // the waiters take every server connection
			// What a refresher does: record the redeem, redeem, save.
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			if err := holder.CheckWrite(wctx, k, 100); err != nil {
				t.Fatal(err)
			}
			if err := holder.Save(wctx, k, old, storetest.Token(k, "lin", 1)); err != nil {
				t.Fatalf("the holder's save behind %d waiters and 4 server connections: %v", 30, err)
			}
			unlock()
			wg.Wait()
			close(got)
			for g := range got {
				if g != 1 {
					t.Errorf("a waiter loaded generation %d, want the holder's 1", g)
				}
			}
		})
	}
}
