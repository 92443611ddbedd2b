// Package storekit is the store author's kit: the locked read-modify-write
// every writer of a credential goes through (Update, Put), the compare of
// a Store's compare-and-swap (CompareStored), and Memory, a Store held in
// memory. Stores in this module and outside it use it; sealing is in
// package sealed, the conformance suite in storetest.
package storekit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/redact"
)

// Update runs the locked read-modify-write of one credential: it takes
// k's lock from lk, loads the current set (nil when none or unusable),
// calls fn, and saves what fn returns, bound to k (latch.Bind), over it with the
// compare-and-swap Save, or deletes it when fn returns nil. fn returning
// an error, or a set bound to another key, aborts the write. It returns
// the set that was current when fn ran.
func Update(ctx context.Context, st latch.Store, lk latch.Locker, k latch.Key, fn func(cur *latch.Token) (*latch.Token, error)) (*latch.Token, error) {
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := st.Load(ctx, k)
	if errors.Is(err, latch.ErrNotFound) || errors.Is(err, latch.ErrUnusable) {
		cur, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return cur, err
	}
	if next == nil {
		if cur == nil {
			return nil, nil
		}
		return cur, st.Delete(ctx, k, cur)
	}
	if next, err = latch.Bind(k, next); err != nil {
		return cur, fmt.Errorf("save credential: %w", err)
	}
	return cur, st.Save(ctx, k, cur, next)
}

// Put saves t as k's credential, replacing whatever is stored, under the
// store's own lock (st must implement latch.Locker). This is how a login
// stores its new set: a refresher of the old session that holds the lock
// saves first and is then replaced, and one that comes after adopts the
// login.
func Put(ctx context.Context, st latch.Store, k latch.Key, t *latch.Token) error {
	lk := LockerOf(st)
	if lk == nil {
		return fmt.Errorf("save credential: %w", latch.ErrNoLocker)
	}
	_, err := Update(ctx, st, lk, k, func(*latch.Token) (*latch.Token, error) { return t, nil })
	return err
}

// CompareStored is the compare of a store's compare-and-swap: given what
// a Load of k returned (cur, err) and the set old a write was derived
// from, it returns nil when the write may go ahead, an error matching
// latch.ErrConflict when the store holds another set, or err when the
// Load failed for another reason. Nothing stored, or a credential that
// fails with latch.ErrUnusable, counts as nothing, which only a nil old
// matches.
func CompareStored(k latch.Key, cur *latch.Token, err error, old *latch.Token) error {
	switch {
	case errors.Is(err, latch.ErrNotFound), errors.Is(err, latch.ErrUnusable):
		if old == nil {
			return nil
		}
	case err != nil:
		return err
	case old != nil && cur.Matches(old):
		return nil
	}
	return fmt.Errorf("write credential %s: %w", k, latch.ErrConflict)
}

// LockerOf returns st's latch.Locker, or nil if it has none.
func LockerOf(st latch.Store) latch.Locker {
	lk, _ := st.(latch.Locker)
	return lk
}

// NewLineage returns a random lineage id for a new login (a set's
// lineage, with its generation, tells a re-login from a rotation).
func NewLineage() string { return rand.Text()[:16] }

// Fingerprint returns a short, non-reversible tag for a secret, so that a
// person can tell two tokens apart without seeing either. It returns "" for "".
func Fingerprint(secret string) string { return redact.Fingerprint(secret) }

// Memory is a latch.Store held in memory, for tests and for callers that
// keep tokens elsewhere. Its zero value is ready to use.
type Memory struct {
	mu    sync.Mutex
	m     map[latch.Key]latch.Token
	locks map[latch.Key]chan struct{}
	// ReadOnly, when set, makes Save and CheckWrite fail with latch.ErrStoreReadOnly.
	ReadOnly bool
}

var (
	_ latch.Store        = (*Memory)(nil)
	_ latch.WriteChecker = (*Memory)(nil)
	_ latch.Lister       = (*Memory)(nil)
	_ latch.Locker       = (*Memory)(nil)
	_ latch.Waiter       = (*Memory)(nil)
)

// Load returns a copy of the token stored under k.
func (s *Memory) Load(_ context.Context, k latch.Key) (*latch.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[k]
	if !ok {
		return nil, latch.ErrNotFound
	}
	return &t, nil
}

// Save stores a copy of t under k if k still holds old.
func (s *Memory) Save(_ context.Context, k latch.Key, old, t *latch.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return latch.ErrStoreReadOnly
	}
	if err := s.compareLocked(k, old); err != nil {
		return err
	}
	if s.m == nil {
		s.m = make(map[latch.Key]latch.Token)
	}
	s.m[k] = *t
	return nil
}

func (s *Memory) compareLocked(k latch.Key, old *latch.Token) error {
	cur, ok := s.m[k]
	if !ok {
		return CompareStored(k, nil, latch.ErrNotFound, old)
	}
	return CompareStored(k, &cur, nil, old)
}

// Delete removes k if it still holds old. Deleting a missing key with a
// nil old is not an error.
func (s *Memory) Delete(_ context.Context, k latch.Key, old *latch.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.compareLocked(k, old); err != nil {
		return err
	}
	delete(s.m, k)
	return nil
}

// Lock takes k's lock within this process: a Memory is reachable
// from one process only.
func (s *Memory) Lock(ctx context.Context, k latch.Key) (func(), error) {
	c := s.lockChan(k)
	select {
	case c <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock credential: %w", ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-c }) }, nil
}

// Wait waits until k's lock is free, without taking it (latch.Waiter).
func (s *Memory) Wait(ctx context.Context, k latch.Key) (bool, error) {
	c := s.lockChan(k)
	select {
	case c <- struct{}{}:
		<-c
		return false, nil
	default:
	}
	select {
	case c <- struct{}{}:
		<-c
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("wait for credential lock: %w", ctx.Err())
	}
}

func (s *Memory) lockChan(k latch.Key) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = make(map[latch.Key]chan struct{})
	}
	c := s.locks[k]
	if c == nil {
		c = make(chan struct{}, 1)
		s.locks[k] = c
	}
	return c
}

// CheckWrite reports latch.ErrStoreReadOnly when ReadOnly is set.
func (s *Memory) CheckWrite(context.Context, latch.Key, int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return latch.ErrStoreReadOnly
	}
	return nil
}

// List returns the stored keys.
func (s *Memory) List(context.Context) ([]latch.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]latch.Key, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys, nil
}
