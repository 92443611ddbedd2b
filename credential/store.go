package credential

import (
	"context"
)

// Store persists token sets. Save writes the whole set as one atomic unit:
// after a crash a Load sees the old set or the new one, never a mix.
// Load returns an error matching ErrNotFound when nothing is stored.
//
// The set saved under k is bound to k (t.Key() == k): storekit.Update
// and latch.Source see to it (Bind).
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
// reports whether it had to wait. A latch.Source that finds the lock held
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
