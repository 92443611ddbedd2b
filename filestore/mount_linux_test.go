package filestore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchdev/latch"
)

// tmpfs mounts a small tmpfs at a temp dir. Running as root, chmod 0500
// would not stop our writes, so a real read-only or full file system is
// the honest test; it needs CAP_SYS_ADMIN and is skipped without it.
func tmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount tmpfs here (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	return dir
}

func TestReadOnlyFileSystem(t *testing.T) {
	dir := tmpfs(t, "size=1m,mode=0700")
	s := New(dir)
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWrite(ctx, key, 0); err != nil {
		t.Fatalf("CheckWrite on a writable store: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	if err := s.CheckWrite(ctx, key, 0); !errors.Is(err, latch.ErrStoreReadOnly) {
		t.Fatalf("CheckWrite: got %v, want ErrStoreReadOnly", err)
	}
	if err := s.Save(ctx, key, gen(1, 64), gen(2, 64)); !errors.Is(err, latch.ErrStoreReadOnly) {
		t.Fatalf("Save: got %v, want ErrStoreReadOnly", err)
	}
	if got, err := s.Load(ctx, key); err != nil || got.Generation != 1 {
		t.Fatalf("read-only store must still load the old set: got %+v, %v", got, err)
	}
}

func TestDiskFull(t *testing.T) {
	dir := tmpfs(t, "size=64k,mode=0700")
	s := New(dir)
	if err := s.Save(ctx, key, nil, gen(1, 2048)); err != nil {
		t.Fatal(err)
	}
	err := s.Save(ctx, key, gen(1, 2048), gen(2, 200<<10))
	if !errors.Is(err, latch.ErrStoreReadOnly) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want a disk-full error matching ErrStoreReadOnly", err)
	}
	if got, err := s.Load(ctx, key); err != nil || !equal(got, gen(1, 2048)) {
		t.Fatalf("old set must be intact: got generation %v, %v", got, err)
	}
	if keys, err := s.List(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("no temp file may be left as a credential: %v, %v", keys, err)
	}
}

// TestCheckWriteReservesTheSetSize (promise item 7): on a nearly full disk
// with room for a 4 KiB probe but not for the set being replaced,
// CheckWrite fails, so the refresh token is never spent on a set that
// could not be saved.
func TestCheckWriteReservesTheSetSize(t *testing.T) {
	dir := tmpfs(t, "size=64k,mode=0700")
	s := New(dir)
	set := gen(1, 20<<10)
	if err := s.Save(ctx, key, nil, set); err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	var n int64
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
		n += 4096
	}
	if err := filler.Truncate(n - 12<<10); err != nil { // leave about 12 KiB free
		t.Fatal(err)
	}
	size := len(mustJSON(t, set))
	if err := s.CheckWrite(ctx, key, size); !errors.Is(err, latch.ErrStoreReadOnly) {
		t.Fatalf("CheckWrite for a %d-byte set with 12 KiB free: got %v, want ErrStoreReadOnly", size, err)
	}
	if err := s.Save(ctx, key, set, gen(2, 20<<10)); err == nil {
		t.Fatal("the set fits after all; the test does not fill the disk enough")
	}
	if got, err := s.Load(ctx, key); err != nil || got.Generation != 1 {
		t.Fatalf("old set: %+v, %v", got, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
