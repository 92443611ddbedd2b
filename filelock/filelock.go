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

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/credfile"
)

// DefaultTimeout bounds how long Lock waits for another process: longer
// than a holder may hold it (see latch.DefaultTimeouts).
var DefaultTimeout = latch.DefaultTimeouts.Lock

// retryDelay is how often a waiter polls the kernel lock.
const retryDelay = 10 * time.Millisecond

// Locker implements latch.Locker with one lock file per credential in Dir.
// The zero Timeout means DefaultTimeout. Locker values are safe for
// concurrent use; two Lockers with the same Dir exclude each other, in one
// process as across processes.
type Locker struct {
	Dir     string
	Timeout time.Duration
}

var (
	_ latch.Locker = Locker{}
	_ latch.Waiter = Locker{}
)

// TimeoutError says the lock was still held when the wait bound ran out.
// It matches latch.ErrLockTimeout.
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

// Unwrap makes e match latch.ErrLockTimeout.
func (e *TimeoutError) Unwrap() error { return latch.ErrLockTimeout }

// Path returns the lock file path for k.
// The name is the credential's hash (credfile.Hash), so no issuer or
// account text reaches the file system.
func (l Locker) Path(k latch.Key) string { return filepath.Join(l.Dir, lockName(k)) }

func lockName(k latch.Key) string { return credfile.Hash(k) + ".lock" }

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
func (l Locker) Lock(ctx context.Context, k latch.Key) (func(), error) {
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

	timedOut := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for refresh lock %s: %w", path, err)
		}
		return &TimeoutError{Path: path, Waited: time.Since(start)}
	}

	sem := procSem(path)
	select {
	case sem <- struct{}{}:
	case <-wctx.Done():
		return nil, timedOut()
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(wctx, retryDelay)
	if !ok || err != nil {
		<-sem
		_ = fl.Close()
		if wctx.Err() != nil {
			return nil, timedOut()
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
func (l Locker) TryLock(k latch.Key) (unlock func(), ok bool, err error) {
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

// Wait waits until no process holds k's lock, without taking it: it
// polls for a shared lock (flock LOCK_SH), let go at once, every
// retryDelay, at most l.Timeout and no longer than ctx allows. It reports
// whether the lock was held when it first looked.
func (l Locker) Wait(ctx context.Context, k latch.Key) (bool, error) {
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
	sem := procSem(path)
	fl := flock.New(path, flock.SetPermissions(0o600))
	defer fl.Close()
	for waited := false; ; waited = true {
		// This process's own holder first: not every platform's lock
		// excludes within a process.
		select {
		case sem <- struct{}{}:
			ok, err := fl.TryRLock()
			if ok {
				err = fl.Unlock()
			}
			<-sem
			if err != nil {
				return waited, fmt.Errorf("wait for credential lock %s: %w", path, err)
			}
			if ok {
				return waited, nil
			}
		default:
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-wctx.Done():
			t.Stop()
			if err := ctx.Err(); err != nil {
				return true, fmt.Errorf("wait for refresh lock %s: %w", path, err)
			}
			return true, &TimeoutError{Path: path, Waited: time.Since(start)}
		case <-t.C:
		}
	}
}
