package latch

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Store persists token sets. Save writes the whole set as one atomic unit:
// after a crash a Load sees the old set or the new one, never a mix.
// Load returns an error matching ErrNotFound when nothing is stored.
//
// The set saved under k is bound to k (t.Key() == k): Update and Source
// see to it (Bind).
//
// Save and Delete are compare-and-swap: old is the set the write was
// derived from (nil: nothing usable was stored, that is nothing or a
// credential that fails with ErrUnusable), and the write happens only if
// the store still holds exactly old (Token.Matches); otherwise it fails
// with an error matching ErrConflict and changes nothing. Callers hold
// the credential's lock (Locker) around the Load that gave old and the
// write, so a conflict means a writer ignored the lock, or a lease ran
// out (see the fleet stores).
// Implementations are safe for concurrent use.
type Store interface {
	Load(ctx context.Context, k Key) (*Token, error)
	Save(ctx context.Context, k Key, old, t *Token) error
	Delete(ctx context.Context, k Key, old *Token) error
}

// WriteChecker is implemented by stores that can tell, before a refresh
// token is spent, whether its replacement could be saved (bk #981).
// CheckWrite returns an error matching ErrStoreReadOnly or
// ErrStoreUnavailable when a set of size bytes could not be saved.
type WriteChecker interface {
	CheckWrite(ctx context.Context, k Key, size int) error
}

// Locker serialises every write of one credential across processes:
// refresh, login, logout. Lock waits, honouring ctx, and returns an
// error matching ErrLockTimeout when its own bound runs out. The
// returned unlock is called exactly once. A Locker's lock must be as wide
// as the credential: every process that can reach the credential must
// take the same lock.
type Locker interface {
	Lock(ctx context.Context, k Key) (unlock func(), err error)
}

// Waiter is implemented by Lockers that can wait, without taking k's
// lock, until no process holds it (or holds a redeem in flight). Wait
// reports whether it had to wait. A Source that finds the lock held
// waits so and re-reads: when the holder saved a new set, every waiter
// adopts it at once, instead of taking the lock in turn only to find it.
// Wait honours ctx and the Locker's own bound, as Lock does.
type Waiter interface {
	Wait(ctx context.Context, k Key) (waited bool, err error)
}

// Lister is implemented by stores that can enumerate their credentials.
type Lister interface {
	List(ctx context.Context) ([]Key, error)
}

// Update runs the locked read-modify-write of one credential: it takes
// k's lock from lk, loads the current set (nil when none or unusable), calls fn, and
// saves what fn returns, bound to k (Bind), over it with the
// compare-and-swap Save, or deletes it when fn returns nil. fn returning
// an error, or a set bound to another key, aborts the write. It returns
// the set that was current when fn ran.
func Update(ctx context.Context, st Store, lk Locker, k Key, fn func(cur *Token) (*Token, error)) (*Token, error) {
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := st.Load(ctx, k)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnusable) {
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
	if next, err = Bind(k, next); err != nil {
		return cur, fmt.Errorf("save credential: %w", err)
	}
	return cur, st.Save(ctx, k, cur, next)
}

// Put saves t as k's credential, replacing whatever is stored, under the
// Store's own lock (it must implement Locker). This is how a login stores
// its new set: a refresher of the old session that holds the lock saves
// first and is then replaced, and one that comes after adopts the login.
func Put(ctx context.Context, st Store, k Key, t *Token) error {
	lk := LockerOf(st)
	if lk == nil {
		return fmt.Errorf("save credential: %w", ErrNoLocker)
	}
	_, err := Update(ctx, st, lk, k, func(*Token) (*Token, error) { return t, nil })
	return err
}

// CompareStored is the compare of a Store's compare-and-swap: given what
// a Load of k returned (cur, err) and the set old a write was derived
// from, it returns nil when the write may go ahead, an error matching
// ErrConflict when the store holds another set, or err when the Load
// failed for another reason. Nothing stored, or a credential that fails
// with ErrUnusable, counts as nothing, which only a nil old matches.
func CompareStored(k Key, cur *Token, err error, old *Token) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnusable):
		if old == nil {
			return nil
		}
	case err != nil:
		return err
	case old != nil && cur.Matches(old):
		return nil
	}
	return fmt.Errorf("write credential %s: %w", k, ErrConflict)
}

// LockerOf returns st's Locker, or nil if it has none.
func LockerOf(st Store) Locker {
	lk, _ := st.(Locker)
	return lk
}

// MemoryStore is a Store held in memory, for tests and for callers that
// keep tokens elsewhere. Its zero value is ready to use.
type MemoryStore struct {
	mu    sync.Mutex
	m     map[Key]Token
	locks map[Key]chan struct{}
	// ReadOnly, when set, makes Save and CheckWrite fail with ErrStoreReadOnly.
	ReadOnly bool
}

var (
	_ Store        = (*MemoryStore)(nil)
	_ WriteChecker = (*MemoryStore)(nil)
	_ Lister       = (*MemoryStore)(nil)
	_ Locker       = (*MemoryStore)(nil)
	_ Waiter       = (*MemoryStore)(nil)
)

// Load returns a copy of the token stored under k.
func (s *MemoryStore) Load(_ context.Context, k Key) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[k]
	if !ok {
		return nil, ErrNotFound
	}
	return &t, nil
}

// Save stores a copy of t under k if k still holds old.
func (s *MemoryStore) Save(_ context.Context, k Key, old, t *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return ErrStoreReadOnly
	}
	if err := s.compareLocked(k, old); err != nil {
		return err
	}
	if s.m == nil {
		s.m = make(map[Key]Token)
	}
	s.m[k] = *t
	return nil
}

func (s *MemoryStore) compareLocked(k Key, old *Token) error {
	cur, ok := s.m[k]
	if !ok {
		return CompareStored(k, nil, ErrNotFound, old)
	}
	return CompareStored(k, &cur, nil, old)
}

// Delete removes k if it still holds old. Deleting a missing key with a
// nil old is not an error.
func (s *MemoryStore) Delete(_ context.Context, k Key, old *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.compareLocked(k, old); err != nil {
		return err
	}
	delete(s.m, k)
	return nil
}

// Lock takes k's lock within this process: a MemoryStore is reachable
// from one process only.
func (s *MemoryStore) Lock(ctx context.Context, k Key) (func(), error) {
	c := s.lockChan(k)
	select {
	case c <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock credential: %w", ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-c }) }, nil
}

// Wait waits until k's lock is free, without taking it (Waiter).
func (s *MemoryStore) Wait(ctx context.Context, k Key) (bool, error) {
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

func (s *MemoryStore) lockChan(k Key) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = make(map[Key]chan struct{})
	}
	c := s.locks[k]
	if c == nil {
		c = make(chan struct{}, 1)
		s.locks[k] = c
	}
	return c
}

// CheckWrite reports ErrStoreReadOnly when ReadOnly is set.
func (s *MemoryStore) CheckWrite(context.Context, Key, int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return ErrStoreReadOnly
	}
	return nil
}

// List returns the stored keys.
func (s *MemoryStore) List(context.Context) ([]Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]Key, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys, nil
}
