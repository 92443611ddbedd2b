// Package storekit is the store author's kit: the locked read-modify-write
// every writer of a credential goes through (Update, Put), the compare of
// a Store's compare-and-swap (CompareStored), and Memory, a Store held in
// memory. Stores in this module and outside it use it; sealing is in
// package sealed, the conformance suite in storetest.
package storekit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/latchdev/latch/credential"
)

// Update runs the locked read-modify-write of one credential: it takes
// k's lock from lk, loads the current set (nil when none or unusable),
// calls fn, and saves what fn returns, bound to k (credential.Bind), over it with the
// compare-and-swap Save, or deletes it when fn returns nil. fn returning
// an error, or a set bound to another key, aborts the write. It returns
// the set that was current when fn ran.
func Update(ctx context.Context, st credential.Store, lk credential.Locker, k credential.Key, fn func(cur *credential.Token) (*credential.Token, error)) (*credential.Token, error) {
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := st.Load(ctx, k)
	if errors.Is(err, credential.ErrNotFound) || errors.Is(err, credential.ErrUnusable) {
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
	if next, err = credential.Bind(k, next); err != nil {
		return cur, fmt.Errorf("save credential: %w", err)
	}
	return cur, st.Save(ctx, k, cur, next)
}

// Put saves t as k's credential, replacing whatever is stored, under the
// store's own lock (st must implement credential.Locker). This is how a login
// stores its new set: a refresher of the old session that holds the lock
// saves first and is then replaced, and one that comes after adopts the
// login.
func Put(ctx context.Context, st credential.Store, k credential.Key, t *credential.Token) error {
	lk := LockerOf(st)
	if lk == nil {
		return fmt.Errorf("save credential: %w", credential.ErrNoLocker)
	}
	_, err := Update(ctx, st, lk, k, func(*credential.Token) (*credential.Token, error) { return t, nil })
	return err
}

// CompareStored is the compare of a store's compare-and-swap: given what
// a Load of k returned (cur, err) and the set old a write was derived
// from, it returns nil when the write may go ahead, an error matching
// credential.ErrConflict when the store holds another set, or err when the
// Load failed for another reason. Nothing stored, or a credential that
// fails with credential.ErrUnusable, counts as nothing, which only a nil old
// matches.
func CompareStored(k credential.Key, cur *credential.Token, err error, old *credential.Token) error {
	switch {
	case errors.Is(err, credential.ErrNotFound), errors.Is(err, credential.ErrUnusable):
		if old == nil {
			return nil
		}
	case err != nil:
		return err
	case old != nil && cur.Matches(old):
		return nil
	}
	return fmt.Errorf("write credential %s: %w", k, credential.ErrConflict)
}

// LockerOf returns st's credential.Locker, or nil if it has none.
func LockerOf(st credential.Store) credential.Locker {
	lk, _ := st.(credential.Locker)
	return lk
}

// NewLineage returns a random lineage id for a new login (a set's
// lineage, with its generation, tells a re-login from a rotation).
func NewLineage() string { return rand.Text()[:16] }

// Fingerprint returns a short, non-reversible tag for a secret, so that a
// person can tell two tokens apart without seeing either. It returns "" for "".
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

// Memory is a credential.Store held in memory, for tests and for callers that
// keep tokens elsewhere. Its zero value is ready to use.
type Memory struct {
	mu    sync.Mutex
	m     map[credential.Key]credential.Token
	locks map[credential.Key]chan struct{}
	// ReadOnly, when set, makes Save and CheckWrite fail with credential.ErrStoreReadOnly.
	ReadOnly bool
}

var (
	_ credential.Store        = (*Memory)(nil)
	_ credential.WriteChecker = (*Memory)(nil)
	_ credential.Lister       = (*Memory)(nil)
	_ credential.Locker       = (*Memory)(nil)
	_ credential.Waiter       = (*Memory)(nil)
)

// Load returns a copy of the token stored under k.
func (s *Memory) Load(_ context.Context, k credential.Key) (*credential.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[k]
	if !ok {
		return nil, credential.ErrNotFound
	}
	return &t, nil
}

// Save stores a copy of t under k if k still holds old.
func (s *Memory) Save(_ context.Context, k credential.Key, old, t *credential.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return credential.ErrStoreReadOnly
	}
	if err := s.compareLocked(k, old); err != nil {
		return err
	}
	if s.m == nil {
		s.m = make(map[credential.Key]credential.Token)
	}
	s.m[k] = *t
	return nil
}

func (s *Memory) compareLocked(k credential.Key, old *credential.Token) error {
	cur, ok := s.m[k]
	if !ok {
		return CompareStored(k, nil, credential.ErrNotFound, old)
	}
	return CompareStored(k, &cur, nil, old)
}

// Delete removes k if it still holds old. Deleting a missing key with a
// nil old is not an error.
func (s *Memory) Delete(_ context.Context, k credential.Key, old *credential.Token) error {
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
func (s *Memory) Lock(ctx context.Context, k credential.Key) (func(), error) {
	c := s.lockChan(k)
	select {
	case c <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock credential: %w", ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-c }) }, nil
}

// Wait waits until k's lock is free, without taking it (credential.Waiter).
func (s *Memory) Wait(ctx context.Context, k credential.Key) (bool, error) {
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

func (s *Memory) lockChan(k credential.Key) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = make(map[credential.Key]chan struct{})
	}
	c := s.locks[k]
	if c == nil {
		c = make(chan struct{}, 1)
		s.locks[k] = c
	}
	return c
}

// CheckWrite reports credential.ErrStoreReadOnly when ReadOnly is set.
func (s *Memory) CheckWrite(context.Context, credential.Key, int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return credential.ErrStoreReadOnly
	}
	return nil
}

// List returns the stored keys.
func (s *Memory) List(context.Context) ([]credential.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]credential.Key, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys, nil
}
