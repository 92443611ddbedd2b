//go:build unix

package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latchdev/latch"
)

func TestCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "latch")
	s := New(dir)
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path(key): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: got mode %04o, want %04o", path, got, want)
		}
	}
	if _, err := s.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.Base(strings.TrimSuffix(s.Path(key), ".json"))+".lock")); err != nil {
		t.Fatalf("lock file beside the credential: %v", err)
	}
}

func TestRefusesReadableFile(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	path := s.Path(key)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := s.Load(ctx, key)
		var ue *UnsafeError
		if !errors.As(err, &ue) || !errors.Is(err, latch.ErrUnusable) {
			t.Fatalf("mode %04o: got %v, want *UnsafeError", mode, err)
		}
		if want := "chmod 600 " + path; !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: message %q lacks %q", mode, err, want)
		}
		if strings.Contains(err.Error(), "at-") {
			t.Errorf("message leaks the token: %q", err)
		}
		if _, err := s.List(ctx); !errors.As(err, &ue) {
			t.Errorf("List must report the refusal too, got %v", err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, key); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}

func TestRefusesFileOwnedByAnother(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(s.Path(key), 4242, 4242); err != nil {
		t.Skipf("cannot chown to another uid here (needs root): %v", err)
	}
	_, err := s.Load(ctx, key)
	var ue *UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "owned by uid 4242") || !strings.Contains(err.Error(), "chown") {
		t.Fatalf("got %v, want a refusal naming uid 4242 and chown", err)
	}
}

func TestRefusesSymlink(t *testing.T) {
	s := New(t.TempDir())
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "x.json")
	if err := os.Rename(s.Path(key), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, s.Path(key)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, key); !errors.Is(err, latch.ErrUnusable) {
		t.Fatalf("got %v, want a refusal of the symlink", err)
	}
}

func TestRefusesWritableDir(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	if err := s.Save(ctx, key, nil, gen(1, 64)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	err := s.Save(ctx, key, gen(1, 64), gen(2, 64))
	if want := "chmod 700 " + dir; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a refusal naming %q", err, want)
	}
	if got, err := s.Load(ctx, key); err != nil || got.Generation != 1 {
		t.Fatalf("old set: got %+v, %v", got, err)
	}
}

// TestNotADirectory: the store path's parent is a regular file, so the
// store can be neither created nor written.
func TestNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(filepath.Join(f, "latch"))
	if err := s.CheckWrite(ctx, key, 0); err == nil {
		t.Fatal("CheckWrite: got nil, want an error")
	}
	if err := s.Save(ctx, key, nil, gen(1, 64)); err == nil {
		t.Fatal("Save: got nil, want an error")
	}
}
