// Package filestore keeps credentials in private files, one file per
// credential, for machines without a working OS keyring (LESSONS.md 12, 14).
//
// Each credential lives in <dir>/<hash>.json (mode 0600, dir 0700), where
// <hash> is a hash of its credential.Key; the file holds the key and the whole
// token set as one JSON document. One file per credential means a write to
// one credential can never tear or lose another, and writers of different
// credentials need no shared lock. Writes go to a temp file in the same
// directory, which is fsynced, renamed over the old file, and then the
// directory is fsynced: after a crash the old or the new set is there,
// never an empty or partial file. The refresh lock file <hash>.lock lives
// beside it and is never deleted.
package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/filelock"
	"github.com/latchdev/latch/internal/credfile"
	"github.com/latchdev/latch/storekit"
)

// DefaultDir returns the user's config directory (os.UserConfigDir:
// XDG_CONFIG_HOME or ~/.config on Unix, Application Support on macOS,
// AppData on Windows) joined with app, the program's name. A program
// that lets its users choose a directory passes it to New instead.
func DefaultDir(app string) (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config directory: %w", err)
	}
	return filepath.Join(d, app), nil
}

// Store is a credential.Store over files in one directory. It also implements
// credential.WriteChecker, credential.Locker and credential.Lister, and is safe for
// concurrent use by goroutines and processes.
type Store struct {
	dir  string
	lock filelock.Locker
}

var (
	_ credential.Store        = (*Store)(nil)
	_ credential.WriteChecker = (*Store)(nil)
	_ credential.Locker       = (*Store)(nil)
	_ credential.Lister       = (*Store)(nil)
)

// New returns a Store in dir. Nothing is touched until first use; the
// directory is created with mode 0700 on the first write.
func New(dir string, opts ...Option) *Store {
	s := &Store{dir: dir, lock: filelock.Locker{Dir: dir}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures New.
type Option func(*Store)

// LockTimeout bounds how long Lock waits for another process; 0 means
// filelock.DefaultTimeout.
func LockTimeout(d time.Duration) Option { return func(s *Store) { s.lock.Timeout = d } }

// Locker returns the store's one lock: lock files beside the credentials.
func (s *Store) Locker() filelock.Locker { return s.lock }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds k's credential.
func (s *Store) Path(k credential.Key) string {
	return filepath.Join(s.dir, credfile.Hash(k)+".json")
}

// file is the on-disk form: the key, so a file is self-describing and a
// hash collision cannot hand out another credential, and the token set.
type file struct {
	Version int               `json:"version"`
	Key     credential.Key    `json:"key"`
	Token   *credential.Token `json:"token"`
}

// UnsafeError is a refusal to use a credential file or directory that
// other users could read or change. Fix is the command that repairs it.
// It matches credential.ErrStoreUnavailable.
type UnsafeError struct {
	Path    string
	Problem string // e.g. "mode 0644 lets other users read it"
	Fix     string // e.g. "chmod 600 /home/me/.config/latch/cred-….json"
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("refuse to use %s: %s; run `%s`", e.Path, e.Problem, e.Fix)
}

// Unwrap makes e match credential.ErrUnusable: retrying cannot help.
func (e *UnsafeError) Unwrap() error { return credential.ErrUnusable }

// CorruptError is a credential file that is not a credential: not JSON,
// cut short, or a directory where the file belongs. Fix is the command
// that removes it. It matches credential.ErrUnusable.
type CorruptError struct {
	Path    string
	Problem string // e.g. "it is not a credential (12 bytes of something else)"
	Fix     string // e.g. "rm /home/me/.config/latch/cred-….json"
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("cannot use %s: %s; remove it (`%s`) and log in again", e.Path, e.Problem, e.Fix)
}

// Unwrap makes e match credential.ErrUnusable.
func (e *CorruptError) Unwrap() error { return credential.ErrUnusable }

// WriteError is a write the store could not make. Nothing was changed:
// the old credential, if any, is intact. It matches credential.ErrStoreReadOnly
// when the directory cannot be written (read-only file system, permission
// denied, disk full), and credential.ErrStoreUnavailable otherwise.
type WriteError struct {
	Path     string
	ReadOnly bool
	Err      error
}

func (e *WriteError) Error() string {
	s := "write credential " + e.Path
	if errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT) {
		s += " (disk full)"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the store sentinel and the cause.
func (e *WriteError) Unwrap() []error {
	if e.ReadOnly {
		return []error{credential.ErrStoreReadOnly, e.Err}
	}
	return []error{credential.ErrStoreUnavailable, e.Err}
}

func writeErr(path string, err error) error {
	var ue *UnsafeError
	if errors.As(err, &ue) {
		return err
	}
	ro := errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) ||
		errors.Is(err, syscall.EPERM) || diskFull(err)
	return &WriteError{Path: path, ReadOnly: ro, Err: err}
}

// Load returns the credential stored under k, or an error matching
// credential.ErrNotFound. It refuses a file other users can read or that
// another user owns, with an *UnsafeError naming the fix.
func (s *Store) Load(_ context.Context, k credential.Key) (*credential.Token, error) {
	f, err := s.read(s.Path(k))
	if err != nil {
		return nil, err
	}
	if f.Key != k {
		return nil, fmt.Errorf("load credential %s: file holds another key: %w", s.Path(k), credential.ErrNotFound)
	}
	return f.Token, nil
}

func (s *Store) read(path string) (*file, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load credential: %w", credential.ErrNotFound)
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &UnsafeError{Path: path, Problem: "it is a symbolic link", Fix: "rm " + path}
		}
		return nil, fmt.Errorf("load credential: %w: %w", credential.ErrStoreUnavailable, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("load credential: %w: %w", credential.ErrStoreUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &CorruptError{Path: path, Problem: "it is a " + fileKind(fi) + ", not a credential file", Fix: "rm -r " + path}
	}
	if err := checkPrivate(path, fi, false); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("load credential %s: %w: %w", path, credential.ErrStoreUnavailable, err)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil || f.Token == nil {
		// Never quote the content: it holds secrets.
		problem := fmt.Sprintf("it is not a credential (%d bytes of something else)", len(b))
		if len(b) == 0 {
			problem = "it is empty"
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			problem = fmt.Sprintf("it is cut short (%d bytes)", len(b))
		}
		return nil, &CorruptError{Path: path, Problem: problem, Fix: "rm " + path}
	}
	return &f, nil
}

func fileKind(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeNamedPipe != 0:
		return "named pipe"
	case fi.Mode()&fs.ModeSocket != 0:
		return "socket"
	case fi.Mode()&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// checkPrivate refuses a file or directory that others may read (files)
// or write (directories), or that another user owns.
func checkPrivate(path string, fi fs.FileInfo, dir bool) error {
	perm := fi.Mode().Perm()
	if !modeBits {
		return nil
	}
	if dir {
		if perm&0o022 != 0 {
			return &UnsafeError{Path: path, Problem: fmt.Sprintf("directory mode %04o lets other users replace credentials", perm), Fix: "chmod 700 " + path}
		}
	} else if perm&0o077 != 0 {
		return &UnsafeError{Path: path, Problem: fmt.Sprintf("mode %04o lets other users read it", perm), Fix: "chmod 600 " + path}
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return &UnsafeError{Path: path,
			Problem: fmt.Sprintf("it is owned by uid %d, not by you (uid %d)", uid, os.Getuid()),
			Fix:     fmt.Sprintf("chown %d %s", os.Getuid(), path)}
	}
	return nil
}

// prepareDir creates the directory (0700) and refuses one others can write.
func (s *Store) prepareDir() error {
	if err := credfile.EnsureDir(s.dir); err != nil {
		return err
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return err
	}
	return checkPrivate(s.dir, fi, true)
}

// Save writes t as k's credential atomically (temp file, fsync, rename,
// fsync of the directory) if the file still holds old (credential.Store's
// compare-and-swap); the caller holds k's Lock. On any error the old
// credential is untouched and the error is a *WriteError, an
// *UnsafeError, or matches credential.ErrConflict.
func (s *Store) Save(ctx context.Context, k credential.Key, old, t *credential.Token) error {
	if t == nil {
		return errors.New("save credential: nil token")
	}
	if err := s.compare(ctx, k, old); err != nil {
		return err
	}
	return s.write(k, t)
}

// compare checks that k's file holds old (nil: nothing usable). A file
// refused as unsafe is not overwritten: the refusal names its fix.
func (s *Store) compare(ctx context.Context, k credential.Key, old *credential.Token) error {
	cur, err := s.Load(ctx, k)
	var ue *UnsafeError
	if errors.As(err, &ue) {
		return err
	}
	return storekit.CompareStored(k, cur, err, old)
}

// write saves t as k's credential, unconditionally.
func (s *Store) write(k credential.Key, t *credential.Token) error {
	b, err := json.Marshal(file{Version: 1, Key: k, Token: t})
	if err != nil {
		return fmt.Errorf("save credential: %w", err)
	}
	path := s.Path(k)
	if err := s.prepareDir(); err != nil {
		return writeErr(path, err)
	}
	if err := writeAtomic(path, b); err != nil {
		return writeErr(path, err)
	}
	removeStaleTemps(path)
	return nil
}

// removeStaleTemps removes temp files a crashed writer left beside path.
// Only old ones: a fresh one may belong to a live writer in another process.
func removeStaleTemps(path string) {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp"))
	for _, t := range tmps {
		if fi, err := os.Lstat(t); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
			_ = os.Remove(t)
		}
	}
}

func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Delete removes k's credential if it still holds old (nil: nothing
// usable); deleting a missing one with a nil old is not an error.
func (s *Store) Delete(ctx context.Context, k credential.Key, old *credential.Token) error {
	if err := s.compare(ctx, k, old); err != nil {
		return err
	}
	return s.Remove(k)
}

// Remove deletes k's credential whatever it holds: for a copy that no
// longer counts, such as one another store has replaced.
func (s *Store) Remove(k credential.Key) error {
	path := s.Path(k)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete credential: %w", writeErr(path, err))
	}
	return syncDir(s.dir)
}

// CheckWrite reports whether a replacement of size bytes for k could be
// saved, by creating, writing, syncing and removing a temp file beside it
// that is twice that size plus 4 KiB, so a nearly full disk is found
// before a refresh token is spent. It returns an error matching
// credential.ErrStoreReadOnly when it could not.
func (s *Store) CheckWrite(_ context.Context, k credential.Key, size int) error {
	path := s.Path(k)
	if err := s.prepareDir(); err != nil {
		return writeErr(path, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".check.*.tmp")
	if err != nil {
		return writeErr(path, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(make([]byte, 2*max(size, 0)+4096)); err != nil {
		return writeErr(path, err)
	}
	if err := tmp.Sync(); err != nil {
		return writeErr(path, err)
	}
	return nil
}

// Lock takes k's cross-process refresh lock, in the store's directory.
func (s *Store) Lock(ctx context.Context, k credential.Key) (func(), error) {
	return s.lock.Lock(ctx, k)
}

// Wait waits, without taking it, until no process holds k's lock
// (credential.Waiter).
func (s *Store) Wait(ctx context.Context, k credential.Key) (bool, error) {
	return s.lock.Wait(ctx, k)
}

// List returns the keys of the stored credentials. A file that cannot be
// used makes List fail, so that a refusal is never hidden.
func (s *Store) List(context.Context) ([]credential.Key, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w: %w", credential.ErrStoreUnavailable, err)
	}
	var keys []credential.Key
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "cred-") || !strings.HasSuffix(name, ".json") {
			continue
		}
		f, err := s.read(filepath.Join(s.dir, name))
		if errors.Is(err, credential.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list credentials: %w", err)
		}
		keys = append(keys, f.Key)
	}
	return keys, nil
}
