package latch

import (
	"context"
	"sync"
)

// Store persists token sets. Save writes the whole set as one atomic unit:
// after a crash a Load sees the old set or the new one, never a mix.
// Load returns an error matching ErrNotFound when nothing is stored.
// Implementations are safe for concurrent use.
type Store interface {
	Load(ctx context.Context, k Key) (*Token, error)
	Save(ctx context.Context, k Key, t *Token) error
	Delete(ctx context.Context, k Key) error
}

// WriteChecker is implemented by stores that can tell, before a refresh
// token is spent, whether its replacement could be saved (bk #981).
// CheckWrite returns an error matching ErrStoreReadOnly or
// ErrStoreUnavailable when it could not.
type WriteChecker interface {
	CheckWrite(ctx context.Context, k Key) error
}

// Locker serialises refreshes of one credential across processes. Lock
// waits, honouring ctx, and returns an error matching ErrLockTimeout when
// its own bound runs out. The returned unlock is called exactly once.
type Locker interface {
	Lock(ctx context.Context, k Key) (unlock func(), err error)
}

// Lister is implemented by stores that can enumerate their credentials.
type Lister interface {
	List(ctx context.Context) ([]Key, error)
}

// MemoryStore is a Store held in memory, for tests and for callers that
// keep tokens elsewhere. Its zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[Key]Token
	// ReadOnly, when set, makes Save and CheckWrite fail with ErrStoreReadOnly.
	ReadOnly bool
}

var (
	_ Store        = (*MemoryStore)(nil)
	_ WriteChecker = (*MemoryStore)(nil)
	_ Lister       = (*MemoryStore)(nil)
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

// Save stores a copy of t under k.
func (s *MemoryStore) Save(_ context.Context, k Key, t *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ReadOnly {
		return ErrStoreReadOnly
	}
	if s.m == nil {
		s.m = make(map[Key]Token)
	}
	s.m[k] = *t
	return nil
}

// Delete removes k. Deleting a missing key is not an error.
func (s *MemoryStore) Delete(_ context.Context, k Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

// CheckWrite reports ErrStoreReadOnly when ReadOnly is set.
func (s *MemoryStore) CheckWrite(context.Context, Key) error {
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
