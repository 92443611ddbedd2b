// Package credstore chooses where latch keeps credentials: the OS keyring
// when it works, otherwise a private file, and it says which and why
// (LESSONS.md 12). A write never silently does nothing, and after a Save
// into one store no stale credential for the same key survives in the
// other, as far as the other can be reached.
package credstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/filelock"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/credfile"
	"github.com/latchdev/latch/keyring"
	"github.com/latchdev/latch/storekit"
)

// Mode selects the credential store.
type Mode string

// Modes.
const (
	Auto    Mode = "auto"    // the keyring when its probe passes, else the file store, announced
	Keyring Mode = "keyring" // the keyring or an error
	File    Mode = "file"    // the file store
)

// ParseMode parses s; "" means Auto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return Auto, nil
	case Auto, Keyring, File:
		return m, nil
	}
	if strings.ContainsAny(s, ":/@?") {
		// It may be a connection string with a password: never echo it.
		return "", errors.New("parse credential store: not auto, keyring or file, and not a postgres:// or redis:// URL")
	}
	return "", fmt.Errorf("parse credential store %q: want auto, keyring or file", s)
}

// Kinds of store a Choice can hold.
const (
	KindKeyring = "keyring"
	KindFile    = "file"
)

// Options configure Open. Zero fields take defaults.
type Options struct {
	// Mode; "" means Auto.
	Mode Mode
	// Dir holds credential files and lock files; "" means
	// filestore.DefaultDir(Service).
	Dir string
	// Service is the keyring service name; "" means "latch".
	Service string
	// Timeout bounds each keyring call and the probe; 0 means keyring.DefaultTimeout.
	Timeout time.Duration
	// LockTimeout bounds the refresh-lock wait; 0 means filelock.DefaultTimeout.
	LockTimeout time.Duration
	// KeyringLockDir holds the lock files of keyring credentials. A
	// keyring item belongs to the whole user, not to one config
	// directory, so its lock must not live in Dir; "" means
	// DefaultKeyringLockDir(Service).
	KeyringLockDir string
	// OnNotice, if set, is told when a Save had to store a token set in
	// the file because the keyring could not hold it (too large).
	OnNotice func(msg string)
	// NoProbe, with Mode Keyring, skips the health probe (a write, a
	// read-back and a delete: tens of milliseconds). For callers that
	// know the keyring worked before, such as a command after a keyring
	// login; a keyring that has since failed shows up as an error on use.
	NoProbe bool
}

// Choice is the store Open chose and why.
type Choice struct {
	// Store also implements credential.Locker, credential.WriteChecker and credential.Lister.
	Store credential.Store
	// Kind is KindKeyring or KindFile.
	Kind string
	// Mode is the mode that was asked for.
	Mode Mode
	// Health is the keyring probe's result; zero when no probe ran (Mode File).
	Health keyring.Health
	// Fallback is set when Auto chose the file store because the keyring failed.
	Fallback bool
	// Notice is the one line to print on stderr when Fallback is set.
	Notice string
	// Path is the directory of credential and lock files.
	Path string
}

// Open resolves opts and picks the store. In Auto it probes the keyring
// (bounded by opts.Timeout) and falls back to the file store with a
// Notice. In Keyring mode an unusable keyring is an error matching
// credential.ErrStoreUnavailable that names the reason.
func Open(ctx context.Context, opts Options) (*Choice, error) {
	mode, err := ParseMode(string(opts.Mode))
	if err != nil {
		return nil, fmt.Errorf("open credential store: %w", err)
	}
	service := opts.Service
	if service == "" {
		service = "latch"
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = filestore.DefaultDir(service); err != nil {
			return nil, fmt.Errorf("open credential store: %w", err)
		}
	}
	krLockDir := opts.KeyringLockDir
	if krLockDir == "" {
		var err error
		if krLockDir, err = DefaultKeyringLockDir(service); err != nil {
			return nil, fmt.Errorf("open credential store: %w", err)
		}
	}
	fs := filestore.New(dir, filestore.LockTimeout(opts.LockTimeout))
	fileLock := fs.Locker()
	krLock := filelock.Locker{Dir: krLockDir, Timeout: opts.LockTimeout}
	kr := keyring.New(service)
	kr.Timeout = opts.Timeout
	kr.IndexLock = func(ctx context.Context) (func(), error) {
		return krLock.LockFile(ctx, indexLockName(service))
	}
	s := &Store{kr: kr, fs: fs, lock: fileLock, onNotice: opts.OnNotice}
	c := &Choice{Store: s, Mode: mode, Path: dir}
	useKeyring := func() {
		s.kind, c.Kind = KindKeyring, KindKeyring
		s.lock = krLock
	}

	if mode == File {
		s.kind, c.Kind = KindFile, KindFile
		return c, nil
	}
	if mode == Keyring && opts.NoProbe {
		useKeyring()
		return c, nil
	}
	c.Health = kr.Probe(ctx)
	switch {
	case c.Health.OK:
		useKeyring()
	case mode == Keyring:
		return nil, &UnavailableError{Health: c.Health}
	default:
		s.kind, c.Kind = KindFile, KindFile
		s.krDown = true // the probe failed: do not spend a timeout per Save on cleanup
		c.Fallback = true
		c.Notice = fmt.Sprintf("keyring unavailable (%s); storing credentials in %s (0600)", c.Health.Message, dir)
	}
	return c, nil
}

// DefaultKeyringLockDir returns a lock directory as wide as the keyring:
// one per user, whatever the config directory or environment.
// On Linux that is /run/user/UID/SERVICE when that runtime directory
// exists and is the user's; elsewhere, and otherwise, a directory of the
// user's own under the temp directory (SERVICE-UID), or the user's cache
// directory on Windows. filelock refuses a directory another user owns.
func DefaultKeyringLockDir(service string) (string, error) {
	if runtime.GOOS == "windows" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find keyring lock directory: %w", err)
		}
		return filepath.Join(d, service, "locks"), nil
	}
	uid := os.Getuid()
	run := fmt.Sprintf("/run/user/%d", uid)
	if fi, err := os.Stat(run); err == nil && fi.IsDir() && ownedBy(fi, uid) {
		return filepath.Join(run, service), nil
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d", service, uid)), nil
}

// UnavailableError: the keyring was asked for but cannot be used. It
// matches credential.ErrStoreUnavailable.
type UnavailableError struct{ Health keyring.Health }

func (e *UnavailableError) Error() string {
	return "open keyring: " + e.Health.Message
}

// Unwrap makes e match credential.ErrStoreUnavailable.
func (e *UnavailableError) Unwrap() error { return credential.ErrStoreUnavailable }

// Store is the chosen store: the keyring (with the file store taking sets
// too large for it) or the file store. Either way it locks with filelock
// in the file store's directory. It is safe for concurrent use.
type Store struct {
	kind     string
	kr       *keyring.Store
	fs       *filestore.Store
	lock     filelock.Locker
	onNotice func(string)

	mu     sync.Mutex
	krDown bool // the keyring is known unreachable; skip cleanup there
}

var (
	_ credential.Store        = (*Store)(nil)
	_ credential.WriteChecker = (*Store)(nil)
	_ credential.Locker       = (*Store)(nil)
	_ credential.Lister       = (*Store)(nil)
)

// Kind returns KindKeyring or KindFile.
func (s *Store) Kind() string { return s.kind }

// Load returns k's credential. With the keyring it also looks in the file
// store, where a set too large for the keyring is kept.
func (s *Store) Load(ctx context.Context, k credential.Key) (*credential.Token, error) {
	t, _, err := s.load(ctx, k)
	return t, err
}

// load also says which store held the set.
func (s *Store) load(ctx context.Context, k credential.Key) (*credential.Token, string, error) {
	if s.kind == KindFile {
		t, err := s.fs.Load(ctx, k)
		return t, KindFile, err
	}
	t, err := s.kr.Load(ctx, k)
	if errors.Is(err, credential.ErrNotFound) {
		t, err = s.fs.Load(ctx, k)
		return t, KindFile, err
	}
	return t, KindKeyring, err
}

// Save stores t under k if k still holds old (credential.Store's
// compare-and-swap), and then removes any copy of k from the other store,
// best effort. With the keyring, a set too large for it goes to the file
// store and OnNotice is told; no error from the keyring is otherwise
// swallowed.
func (s *Store) Save(ctx context.Context, k credential.Key, old, t *credential.Token) error {
	if s.kind == KindFile {
		if err := s.fs.Save(ctx, k, old, t); err != nil {
			return err
		}
		s.cleanKeyring(ctx, k)
		return nil
	}
	cur, where, err := s.load(ctx, k)
	if err := storekit.CompareStored(k, cur, err, old); err != nil {
		return err
	}
	krOld, fsOld := cur, (*credential.Token)(nil)
	if where == KindFile {
		krOld, fsOld = nil, cur
	}
	err = s.kr.Save(ctx, k, krOld, t)
	if err == nil {
		_ = s.fs.Remove(k)
		return nil
	}
	if !errors.Is(err, keyring.ErrTooLarge) {
		return err
	}
	if ferr := s.fs.Save(ctx, k, fsOld, t); ferr != nil {
		return fmt.Errorf("%w; and in the file store: %w", err, ferr)
	}
	_ = s.kr.Remove(ctx, k) // the old, smaller set must not shadow the new one
	if s.onNotice != nil {
		s.onNotice(fmt.Sprintf("token set for %s is too large for the keyring (%v); stored in %s (0600)", k, err, s.fs.Path(k)))
	}
	return nil
}

// cleanKeyring removes k from the keyring unless it is known unreachable;
// the first failure marks it so, so a dead keyring costs at most one
// timeout per process.
func (s *Store) cleanKeyring(ctx context.Context, k credential.Key) {
	s.mu.Lock()
	down := s.krDown
	s.mu.Unlock()
	if down {
		return
	}
	if err := s.kr.Remove(ctx, k); err != nil {
		s.mu.Lock()
		s.krDown = true
		s.mu.Unlock()
	}
}

// Delete removes k if it still holds old, from both stores (the keyring
// as far as reachable).
func (s *Store) Delete(ctx context.Context, k credential.Key, old *credential.Token) error {
	if s.kind == KindFile {
		if err := s.fs.Delete(ctx, k, old); err != nil {
			return err
		}
		s.cleanKeyring(ctx, k)
		return nil
	}
	cur, _, err := s.load(ctx, k)
	if err := storekit.CompareStored(k, cur, err, old); err != nil {
		return err
	}
	return errors.Join(s.kr.Remove(ctx, k), s.fs.Remove(k))
}

// CheckWrite reports whether k's replacement could be saved in the
// chosen store.
func (s *Store) CheckWrite(ctx context.Context, k credential.Key, size int) error {
	if s.kind == KindFile {
		return s.fs.CheckWrite(ctx, k, size)
	}
	return s.kr.CheckWrite(ctx, k, size)
}

// Lock takes k's cross-process lock: in the file store's directory for
// the file store, in the per-user keyring lock directory for the keyring.
func (s *Store) Lock(ctx context.Context, k credential.Key) (func(), error) {
	return s.lock.Lock(ctx, k)
}

// Wait waits, without taking it, until no process holds k's lock
// (credential.Waiter).
func (s *Store) Wait(ctx context.Context, k credential.Key) (bool, error) {
	return s.lock.Wait(ctx, k)
}

// LockPath returns the lock file that guards k.
func (s *Store) LockPath(k credential.Key) string { return s.lock.Path(k) }

// List returns the stored keys (with the keyring, also those kept in the
// file store).
func (s *Store) List(ctx context.Context) ([]credential.Key, error) {
	keys, err := s.fs.List(ctx)
	if err != nil || s.kind == KindFile {
		return keys, err
	}
	kk, err := s.kr.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range kk {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// indexLockName is the lock file that guards the keyring's index item:
// the name earlier versions took it under (the hash of a key no
// credential has, its issuer not a URL), so that they share the lock.
func indexLockName(service string) string {
	return credfile.Hash(credential.Key{Issuer: "latch:keyring-index", ClientID: service}) + ".lock"
}
