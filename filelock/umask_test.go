//go:build unix

package filelock

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

func umask(m int) int { return syscall.Umask(m) }

func TestLockPerKeyAndPerms(t *testing.T) {
	dir := t.TempDir() + "/new"
	old := umask(0)
	defer umask(old)
	l := Locker{Dir: dir, Timeout: 100 * time.Millisecond}
	u1, err := l.Lock(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	other := key
	other.Account = "other"
	u2, err := l.Lock(context.Background(), other)
	if err != nil {
		t.Fatalf("another key must not be blocked: %v", err)
	}
	u2()
	for path, want := range map[string]os.FileMode{dir: 0o700, l.Path(key): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: got mode %04o, want %04o", path, got, want)
		}
	}
}
