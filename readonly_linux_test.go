package latch_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
)

// TestReadOnlyFileStoreSpendsNothing: the store can be read but not
// written (a read-only file system: chmod does not stop root), so the
// refresh token is not spent (bk #981). The server sees zero token calls
// and the credential still loads.
func TestReadOnlyFileStoreSpendsNothing(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount tmpfs here (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	srv := newRotatingServer(t)
	st := filestore.New(dir)
	src := newSource(srv, st, expired(srv.login()))
	// Take the lock once so its file exists, as after any earlier refresh.
	unlock, err := st.Lock(context.Background(), src.Key)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	_, err = src.Token(context.Background())
	if !errors.Is(err, latch.ErrStoreReadOnly) {
		t.Fatalf("got %v, want ErrStoreReadOnly", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Errorf("token endpoint calls = %d, want 0", n)
	}
	if got, err := st.Load(context.Background(), src.Key); err != nil || got.Generation != 0 {
		t.Errorf("credential after the aborted refresh: %+v, %v", got, err)
	}
	t.Logf("error shown: %v", err)
}
