package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filelock"
	"github.com/latchdev/latch/internal/credfile"
	"github.com/latchdev/latch/sealed"
)

// Cache is a fleet store behind a copy, on this machine, of each set's
// access token: never its refresh token or client secret, sealed with the
// fleet store's key. A process that finds a fresh copy uses it without
// connecting to the fleet store; when the token must be replaced, one
// process per machine goes to the fleet store while the others on the
// machine wait for it (a machine-wide lock) and adopt the copy it leaves.
//
// Under its lock a Cache reads only the fleet store, so a refresh is
// always decided on the stored set, never on a copy. Outside it, a Load
// may return a copy, which has no refresh token: a Cache is for a
// latch.Source (Store and Lock), not for a command that shows or
// replaces the stored set. Such a command uses the fleet store and calls
// Forget.
//
// A copy serves until its access token is within latch.DefaultSkew of its
// expiry, or is rejected (a 401 makes the Source refresh under the lock).
// So a login or logout on another machine reaches this one by then.
type Cache struct {
	// Dir holds the copies and the machine's locks; it is made 0700.
	Dir string
	// Box seals the copies: the fleet store's own key, or plaintext when
	// the fleet store is.
	Box *sealed.Box
	// Open opens the fleet store, on the first call that needs it. The
	// store must be a latch.Locker; a latch.Waiter is used when it is one.
	Open func(context.Context) (latch.Store, error)
	// LockTimeout bounds the wait for the machine's lock; 0 means
	// MachineLockTimeout.
	LockTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	st latch.Store
	// held counts this process's holds of each credential's lock: under
	// it, Load reads the fleet store.
	held map[latch.Key]int
	// leading is the machine's lock, taken by a Wait that found it free,
	// kept for the Lock or Load that follows (see Wait).
	leading map[latch.Key]func()
	// served is the access token each Load last returned: a copy that
	// differs from it was left by another process on this machine.
	served map[latch.Key]string
}

var (
	_ latch.Store        = (*Cache)(nil)
	_ latch.Locker       = (*Cache)(nil)
	_ latch.Waiter       = (*Cache)(nil)
	_ latch.WriteChecker = (*Cache)(nil)
)

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// MachineLockTimeout bounds the wait for the machine's lock: longer than
// its holder may keep it, which is a wait for the fleet store's lock, then
// that lock's refresh and save.
var MachineLockTimeout = 2*latch.DefaultTimeouts.Lock + latch.DefaultTimeouts.Refresh + latch.DefaultTimeouts.Save

func (c *Cache) machine() filelock.Locker {
	t := c.LockTimeout
	if t <= 0 {
		t = MachineLockTimeout
	}
	return filelock.Locker{Dir: c.Dir, Timeout: t}
}

// store returns the fleet store, opening it on first use. A failed open
// is tried again by the next call.
func (c *Cache) store(ctx context.Context) (latch.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != nil {
		return c.st, nil
	}
	st, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	c.st = st
	return st, nil
}

// Close closes the fleet store if it was opened.
func (c *Cache) Close() error {
	c.mu.Lock()
	st := c.st
	c.st = nil
	c.mu.Unlock()
	if cl, ok := st.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}

func (c *Cache) path(k latch.Key) string { return filepath.Join(c.Dir, credfile.Hash(k)+".token") }

// stripped is what a copy keeps of t: what a request and the Source's
// compare need, no secret but the access token.
func stripped(t *latch.Token) *latch.Token {
	return &latch.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Scope: t.Scope,
		Expiry: t.Expiry, IssuedAt: t.IssuedAt, Issuer: t.Issuer, ClientID: t.ClientID, Account: t.Account,
		User: t.User, Lineage: t.Lineage, Generation: t.Generation}
}

// readCopy returns k's copy, or nil when there is none that opens.
func (c *Cache) readCopy(k latch.Key) *latch.Token {
	b, err := os.ReadFile(c.path(k))
	if err != nil {
		return nil
	}
	t, err := c.Box.Open(k, b)
	if err != nil || t.Key() != k || t.RefreshToken != "" {
		return nil
	}
	return t
}

// keep writes t's copy when t is fresh, and removes k's when t's grant
// was revoked. A copy that cannot be written costs a connection, nothing
// more. An expired copy is left for the Source to replace (see Load).
func (c *Cache) keep(k latch.Key, t *latch.Token) {
	if t.Revoked != "" {
		_ = c.Forget(k)
		return
	}
	if !t.Fresh(c.now(), latch.DefaultSkew) {
		return
	}
	b, err := c.Box.Seal(k, stripped(t))
	if err != nil || credfile.EnsureDir(c.Dir) != nil {
		return
	}
	f, err := os.CreateTemp(c.Dir, ".copy-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), c.path(k)) != nil {
		_ = os.Remove(f.Name())
	}
}

// Forget removes k's copy: a login or logout through the fleet store
// calls it, so that this machine does not serve the set it replaced. It
// leaves a mark of when, so that a Load that read the fleet store before
// it does not write the replaced set back (see Load).
func (c *Cache) Forget(k latch.Key) error {
	if err := credfile.EnsureDir(c.Dir); err != nil {
		return fmt.Errorf("remove the machine's copy of credential %s: %w", k, err)
	}
	mark := c.path(k) + ".forgotten"
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		return fmt.Errorf("remove the machine's copy of credential %s: %w", k, err)
	}
	now := time.Now()
	_ = os.Chtimes(mark, now, now)
	if err := os.Remove(c.path(k)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the machine's copy of credential %s: %w", k, err)
	}
	return nil
}

// forgottenSince reports whether k's copy was forgotten at or after t.
func (c *Cache) forgottenSince(k latch.Key, t time.Time) bool {
	fi, err := os.Stat(c.path(k) + ".forgotten")
	return err == nil && !fi.ModTime().Before(t)
}

// Load returns k's set: a fresh copy when there is one; the expired copy,
// without connecting, when there is one (the Source then replaces it
// through Wait and Lock, one process per machine); else the fleet
// store's set, of which it keeps a copy. Under k's lock, and right after
// a Wait that took the machine's lock, it reads the fleet store.
func (c *Cache) Load(ctx context.Context, k latch.Key) (*latch.Token, error) {
	c.mu.Lock()
	held := c.held[k] > 0
	release := c.leading[k]
	delete(c.leading, k)
	c.mu.Unlock()
	if release != nil {
		defer release()
	}
	if !held && release == nil {
		if t := c.readCopy(k); t != nil && (t.Fresh(c.now(), latch.DefaultSkew) || t.Expired(c.now())) {
			c.serve(k, t)
			return t, nil
		}
	}
	st, err := c.store(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	t, err := st.Load(ctx, k)
	if errors.Is(err, latch.ErrNotFound) {
		_ = c.Forget(k)
	}
	if err == nil {
		// Unless a login or logout here replaced the set meanwhile.
		if !c.forgottenSince(k, start) {
			c.keep(k, t)
		}
		c.serve(k, t)
	}
	return t, err
}

func (c *Cache) serve(k latch.Key, t *latch.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.served == nil {
		c.served = map[latch.Key]string{}
	}
	c.served[k] = t.AccessToken
}

// replaced reports whether k's copy is fresh and not the token this
// process was last given: another process here replaced it.
func (c *Cache) replaced(k latch.Key) bool {
	t := c.readCopy(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	return t != nil && t.Fresh(c.now(), latch.DefaultSkew) && t.AccessToken != c.served[k]
}

// Save writes t to the fleet store if it holds old, then keeps t's copy.
func (c *Cache) Save(ctx context.Context, k latch.Key, old, t *latch.Token) error {
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	if err := st.Save(ctx, k, old, t); err != nil {
		return err
	}
	c.keep(k, t)
	return nil
}

// Delete deletes k's set from the fleet store if it holds old, and k's copy.
func (c *Cache) Delete(ctx context.Context, k latch.Key, old *latch.Token) error {
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	if err := st.Delete(ctx, k, old); err != nil {
		return err
	}
	return c.Forget(k)
}

// CheckWrite asks the fleet store (latch.WriteChecker), when it can tell.
func (c *Cache) CheckWrite(ctx context.Context, k latch.Key, size int) error {
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	if wc, ok := st.(latch.WriteChecker); ok {
		return wc.CheckWrite(ctx, k, size)
	}
	return nil
}

// Lock takes the machine's lock for k, then the fleet store's.
func (c *Cache) Lock(ctx context.Context, k latch.Key) (func(), error) {
	c.mu.Lock()
	local := c.leading[k]
	delete(c.leading, k)
	c.mu.Unlock()
	if local == nil {
		var err error
		if local, err = c.machine().Lock(ctx, k); err != nil {
			return nil, err
		}
	}
	st, err := c.store(ctx)
	if err != nil {
		local()
		return nil, err
	}
	lk, ok := st.(latch.Locker)
	if !ok {
		local()
		return nil, fmt.Errorf("lock credential: %w", latch.ErrNoLocker)
	}
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		local()
		return nil, err
	}
	c.mu.Lock()
	if c.held == nil {
		c.held = map[latch.Key]int{}
	}
	c.held[k]++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.held[k]--; c.held[k] <= 0 {
				delete(c.held, k)
			}
			c.mu.Unlock()
			unlock()
			local()
		})
	}, nil
}

// Wait waits for another process on this machine that holds k's lock
// and reports that it waited, so the Source re-reads and adopts the copy
// that process left; so it does when such a process has just replaced
// the copy. When none did, this process takes the machine's lock and
// keeps it for the Lock, or the Load, that follows, and waits on the
// fleet store (latch.Waiter) for the other machines: so only one process
// per machine connects.
func (c *Cache) Wait(ctx context.Context, k latch.Key) (bool, error) {
	m := c.machine()
	c.mu.Lock()
	_, mine := c.leading[k]
	c.mu.Unlock()
	if !mine {
		local, ok, err := m.TryLock(k)
		if err != nil {
			return false, err
		}
		if !ok {
			waited, err := m.Wait(ctx, k)
			return waited || err == nil, err
		}
		if c.replaced(k) {
			local() // came after this machine's leader: adopt its copy
			return true, nil
		}
		c.mu.Lock()
		if c.leading == nil {
			c.leading = map[latch.Key]func(){}
		}
		c.leading[k] = local
		c.mu.Unlock()
	}
	st, err := c.store(ctx)
	var waited bool
	if err == nil {
		if w, ok := st.(latch.Waiter); ok {
			waited, err = w.Wait(ctx, k)
		}
	}
	if err != nil {
		c.mu.Lock()
		local := c.leading[k]
		delete(c.leading, k)
		c.mu.Unlock()
		if local != nil {
			local()
		}
	}
	return waited, err
}
