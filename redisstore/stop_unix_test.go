//go:build unix

package redisstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/storetest"
)

// A holder stopped (SIGSTOP) longer than its lease loses the lock; another
// process takes it and saves a newer set; the resumed holder's save is
// refused by the compare-and-swap, and its error says the lease ran out.
func TestLeaseLostWhileStopped(t *testing.T) {
	r := testdb.StartRedis(t)
	ctx := context.Background()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	st, err := Open(ctx, r.URL, Options{Key: key, Lease: 300 * time.Millisecond, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := storetest.Token(k, "lin", 0)
	if err := st.Save(ctx, k, nil, base); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestStaleHolder$")
	cmd.Env = append(os.Environ(), "REDISSTORE_HOLDER="+r.URL, "REDISSTORE_DIR="+dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(dir, "locked"))
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(time.Second) // three leases
	unlock, err := st.Lock(ctx, k)
	if err != nil {
		t.Fatalf("Lock after the holder's lease ran out: %v", err)
	}
	newer := storetest.Token(k, "lin", 1)
	if err := st.Save(ctx, k, base, newer); err != nil {
		t.Fatal(err)
	}
	unlock()
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o600)
	cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stale holder: %v\n%s", err, out)
	}
	msg, _ := os.ReadFile(filepath.Join(dir, "result"))
	if !strings.Contains(string(msg), "changed meanwhile") || !strings.Contains(string(msg), "lease ran out") {
		t.Fatalf("the stale holder's save: %q", msg)
	}
	if got, _ := st.Load(ctx, k); !got.Matches(newer) {
		t.Fatal("the newer set was overwritten")
	}
}
