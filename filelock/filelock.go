// Package filelock serialises refreshes of one credential across processes
// with a kernel lock (flock(2) on Unix, LockFileEx on Windows) on a lock
// file that is never deleted. See LESSONS.md 1.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/internal/credfile"
)

// DefaultTimeout bounds how long Lock waits for another process: longer
// than a holder may hold it (see credential.DefaultTimeouts).
var DefaultTimeout = credential.DefaultTimeouts.Lock

// retryDelay is how often Lock polls the kernel lock.
const retryDelay = 10 * time.Millisecond

// Locker implements credential.Locker with one lock file per credential in Dir.
// The zero Timeout means DefaultTimeout. Locker values are safe for
// concurrent use; two Lockers with the same Dir exclude each other, in one
// process as across processes.
type Locker struct {
	Dir     string
	Timeout time.Duration
}

var (
	_ credential.Locker = Locker{}
	_ credential.Waiter = Locker{}
)

// TimeoutError says the lock was still held when the wait bound ran out.
// It matches credential.ErrLockTimeout.
type TimeoutError struct {
	Path   string
	Waited time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("wait for refresh lock: another process has held %s for %s; "+
		"if no other run of this program is going, find the holder with `fuser -v %s` "+
		"(the kernel releases the lock when it exits; do not delete the file)",
		e.Path, e.Waited.Round(time.Millisecond), e.Path)
}

// Unwrap makes e match credential.ErrLockTimeout.
func (e *TimeoutError) Unwrap() error { return credential.ErrLockTimeout }

// Path returns the lock file path for k.
// The name is the credential's hash (credfile.Hash), so no issuer or
// account text reaches the file system.
func (l Locker) Path(k credential.Key) string { return filepath.Join(l.Dir, lockName(k)) }

func lockName(k credential.Key) string { return credfile.Hash(k) + ".lock" }

// procLocks holds one semaphore per lock path, shared by every Locker in
// the process: flock(2) excludes per open file, but not every platform's
// lock does (fcntl locks are per process), so in-process exclusion must
// not depend on it. It is process-wide state by nature.
var procLocks sync.Map // path -> chan struct{}

func procSem(path string) chan struct{} {
	v, _ := procLocks.LoadOrStore(path, make(chan struct{}, 1))
	return v.(chan struct{})
}

// Lock takes the lock for k, waiting at most l.Timeout and no longer than
// ctx allows. On the bound it returns a *TimeoutError; on ctx's end, ctx's
// error. The returned unlock releases both locks; extra calls do nothing.
func (l Locker) Lock(ctx context.Context, k credential.Key) (func(), error) {
	return l.LockFile(ctx, lockName(k))
}

// LockFile is Lock for a lock that guards something other than a
// credential (the keyring's index): it takes the lock file name in l.Dir.
func (l Locker) LockFile(ctx context.Context, name string) (func(), error) {
	if l.Dir == "" {
		return nil, errors.New("lock credential: no lock directory")
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := credfile.EnsureDir(l.Dir); err != nil {
		return nil, fmt.Errorf("lock credential: %w", err)
	}
	path := filepath.Join(l.Dir, name)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	sem := procSem(path)
	select {
	case sem <- struct{}{}:
	case <-wctx.Done():
		return nil, waitError(ctx, path, start)
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(wctx, retryDelay)
	if !ok || err != nil {
		<-sem
		_ = fl.Close()
		if wctx.Err() != nil {
			return nil, waitError(ctx, path, start)
		}
		if err == nil {
			err = errors.New("lock not taken")
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = fl.Unlock()
			<-sem
		})
	}, nil
}

// TryLock takes k's lock if no process holds it, without waiting. ok
// false and no error means another process (or goroutine) holds it.
func (l Locker) TryLock(k credential.Key) (unlock func(), ok bool, err error) {
	if l.Dir == "" {
		return nil, false, errors.New("lock credential: no lock directory")
	}
	if err := credfile.EnsureDir(l.Dir); err != nil {
		return nil, false, fmt.Errorf("lock credential: %w", err)
	}
	path := l.Path(k)
	sem := procSem(path)
	select {
	case sem <- struct{}{}:
	default:
		return nil, false, nil
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	if ok, err = fl.TryLock(); !ok || err != nil {
		<-sem
		_ = fl.Close()
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = fl.Unlock()
			<-sem
		})
	}, true, nil
}

// Wait waits until no process holds k's lock, without taking it, at
// most l.Timeout and no longer than ctx allows. It blocks in the kernel
// for a shared lock (flock LOCK_SH, LockFileEx on Windows), let go at
// once, so every waiter wakes the moment the holder lets go rather than
// at its next poll. It reports whether the lock was held when it looked.
//
// A wait that gives up leaves its blocked call behind (a goroutine and
// its thread, one per lock file): it ends, and lets go of its file, when
// the holder lets go. Until then this process's own Lock, TryLock and
// Wait of that lock queue behind it, as they would behind the holder.
func (l Locker) Wait(ctx context.Context, k credential.Key) (bool, error) {
	if l.Dir == "" {
		return false, errors.New("wait for credential lock: no lock directory")
	}
	path := l.Path(k)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil // never locked
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// This process's own holder first: not every platform's lock
	// excludes within a process.
	sem := procSem(path)
	waited := false
	select {
	case sem <- struct{}{}:
	default:
		waited = true
		select {
		case sem <- struct{}{}:
		case <-wctx.Done():
			return true, waitError(ctx, path, start)
		}
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryRLock()
	if ok {
		err = fl.Unlock()
	}
	if ok || err != nil {
		fl.Close()
		<-sem
		if err != nil {
			return waited, fmt.Errorf("wait for credential lock %s: %w", path, err)
		}
		return waited, nil
	}
	done := make(chan error, 1)
	go func() {
		err := fl.RLock() // blocks until the holder lets go
		if err == nil {
			err = fl.Unlock()
		}
		fl.Close()
		<-sem
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return true, fmt.Errorf("wait for credential lock %s: %w", path, err)
		}
		return true, nil
	case <-wctx.Done():
		return true, waitError(ctx, path, start)
	}
}

// waitError is why a Lock or Wait that began at start gave up: ctx's
// end, or the Locker's bound.
func waitError(ctx context.Context, path string, start time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for refresh lock %s: %w", path, err)
	}
	return &TimeoutError{Path: path, Waited: time.Since(start)}
}
