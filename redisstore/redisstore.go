// Package redisstore is a credential.Store on Redis 7 (or Valkey), for a fleet
// of machines that share one login: one value per credential, sealed with
// AES-GCM; a compare-and-swap save in a WATCH/MULTI transaction; and a
// Locker on SET NX PX with a random owner, renewed while held and released
// by a compare-and-delete script.
//
// A lease can run out under a holder that is still redeeming: Redis down
// longer than the lease, or a holder frozen (stopped, swapped out). So,
// as in pgstore, just before a holder spends a refresh token (CheckWrite)
// it records the redeem in a fence key that lives until its refresh
// deadline plus credential.DefaultTimeouts.Save; its save deletes it in the same
// transaction, and so does its unlock. A process that takes the lock and
// finds another's fence waits for it instead of redeeming the same refresh
// token. The lease itself (DefaultLease) outlasts a whole refresh
// (oauth2-proxy PR #3456: a lease shorter than a slow token request
// re-opens the race), and is renewed while held. A stale holder's save is
// refused by the compare-and-swap, so no newer set is overwritten.
package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/fleet"
	"github.com/latchdev/latch/internal/redact"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
)

// DefaultLease is how long a lock lives without renewal: longer than a
// Source's whole refresh (token requests and save), and shorter than a
// waiter's wait, so a waiter outlasts a holder that died. The holder
// renews it every third of that.
var DefaultLease = credential.DefaultTimeouts.Refresh + credential.DefaultTimeouts.Save + time.Second

// DefaultPrefix prefixes every key latch writes.
const DefaultPrefix = "latch:"

// Options configure Open.
type Options struct {
	// Key is the 32-byte AES-256 key the token sets are sealed with.
	// Without one, Open refuses unless Plaintext is set.
	Key       []byte
	Plaintext bool
	Prefix    string        // default DefaultPrefix
	Lease     time.Duration // default DefaultLease
	// LockTimeout bounds Lock; 0 means credential.DefaultTimeouts.Lock.
	LockTimeout time.Duration
}

// Store is a credential.Store, credential.Locker and credential.Lister on Redis.
type Store struct {
	rdb     *redis.Client
	box     *sealed.Box
	prefix  string
	lease   time.Duration
	timeout time.Duration
	where   string
	user    string
	self    string // this Store's name in a fence

	mu     sync.Mutex
	fenced map[credential.Key]bool   // keys this Store recorded a redeem for
	lost   map[credential.Key]bool   // keys whose lock lease ran out while held
	owners map[credential.Key]string // this process's lock owner per held key
}

var (
	_ credential.Store  = (*Store)(nil)
	_ credential.Locker = (*Store)(nil)
	_ credential.Waiter = (*Store)(nil)
	_ credential.Lister = (*Store)(nil)
)

// Redacted returns rawURL as it may be shown: scheme, user, host, port,
// path and the harmless query parameters only (redact.StoreURL).
func Redacted(rawURL string) string { return redact.StoreURL(rawURL, "redis") }

// Open connects to Redis at rawURL (redis:// or rediss://).
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	where := Redacted(rawURL)
	if o.Key == nil && !o.Plaintext {
		return nil, fmt.Errorf("credential store %s: no store key: set one (32 random bytes in a 0600 file), or accept plaintext tokens in Redis explicitly", where)
	}
	box, err := sealed.New(o.Key)
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("credential store %s: bad URL", where)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	opt.MaxRetries = 1
	s := &Store{rdb: redis.NewClient(opt), box: box, prefix: o.Prefix, lease: o.Lease, timeout: o.LockTimeout,
		where: where, user: cmp.Or(opt.Username, "default"), self: rand.Text(), lost: map[credential.Key]bool{}, owners: map[credential.Key]string{}, fenced: map[credential.Key]bool{}}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	if s.timeout <= 0 {
		s.timeout = credential.DefaultTimeouts.Lock
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, s.err("connect", err)
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// String names the store without a password.
func (s *Store) String() string { return s.where }

// AuthError is Redis refusing the password (WRONGPASS) or asking for
// one (NOAUTH): a person must fix it; trying again cannot help.
type AuthError = fleet.AuthError

// UnavailableError is a Redis that cannot be reached or used now; it
// matches credential.ErrStoreUnavailable.
type UnavailableError struct {
	Where, Op string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("credential store %s: %s: %v", e.Where, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() []error { return []error{credential.ErrStoreUnavailable, e.Err} }

func (s *Store) err(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("credential store %s: %s: %w", s.where, op, err)
	}
	if strings.HasPrefix(err.Error(), "READONLY") {
		return fmt.Errorf("credential store %s: %s: %w", s.where, op, credential.ErrStoreReadOnly)
	}
	// Redis names its errors by their first word; there is no other type.
	switch {
	case strings.HasPrefix(err.Error(), "WRONGPASS"):
		return &AuthError{Server: "Redis", User: s.user, Where: s.where, Err: err}
	case strings.HasPrefix(err.Error(), "NOAUTH"):
		return &AuthError{Server: "Redis", Where: s.where, Err: err}
	}
	return &UnavailableError{Where: s.where, Op: op, Err: err}
}

func (s *Store) id(k credential.Key) string {
	sum := sha256.Sum256([]byte(k.Issuer + "\x00" + k.ClientID + "\x00" + k.Account))
	return hex.EncodeToString(sum[:16])
}

func (s *Store) credKey(k credential.Key) string { return s.prefix + "cred:" + s.id(k) }
func (s *Store) lockKey(k credential.Key) string { return s.prefix + "lock:" + s.id(k) }
func (s *Store) fenceKey(k credential.Key) string {
	return s.prefix + "redeeming:" + s.id(k)
}

// value is what is stored: the key in the clear (for List), the set sealed.
type value struct {
	Key    credential.Key `json:"key"`
	Sealed []byte         `json:"sealed"`
}

func (s *Store) decode(k credential.Key, raw string) (*credential.Token, error) {
	var v value
	if err := json.Unmarshal([]byte(raw), &v); err != nil || v.Key != k {
		return nil, &sealed.OpenError{Reason: "not a latch credential"}
	}
	return s.box.Open(k, v.Sealed)
}

// Load returns k's set.
func (s *Store) Load(ctx context.Context, k credential.Key) (*credential.Token, error) {
	raw, err := s.rdb.Get(ctx, s.credKey(k)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load credential %s: %w", k, credential.ErrNotFound)
	}
	if err != nil {
		return nil, s.err("load", err)
	}
	return s.decode(k, raw)
}

// Save writes t for k if k still holds old: WATCH the value, compare,
// and write in MULTI/EXEC, which fails if anyone wrote meanwhile.
func (s *Store) Save(ctx context.Context, k credential.Key, old, t *credential.Token) error {
	sv, err := s.box.Seal(k, t)
	if err != nil {
		return err
	}
	b, err := json.Marshal(value{Key: k, Sealed: sv})
	if err != nil {
		return err
	}
	return s.compareAndWrite(ctx, k, old, t, func(p redis.Pipeliner) {
		p.Set(ctx, s.credKey(k), b, 0)
		p.Del(ctx, s.fenceKey(k)) // the credential has moved on
	})
}

// Delete removes k's set if k still holds old.
func (s *Store) Delete(ctx context.Context, k credential.Key, old *credential.Token) error {
	return s.compareAndWrite(ctx, k, old, nil, func(p redis.Pipeliner) { p.Del(ctx, s.credKey(k), s.fenceKey(k)) })
}

// compareAndWrite runs one compare-and-swap, tried again while Redis is
// unreachable (fleet.Retry).
func (s *Store) compareAndWrite(ctx context.Context, k credential.Key, old, next *credential.Token, write func(redis.Pipeliner)) error {
	return fleet.Retry(ctx, func(again bool) error { return s.tryCompareAndWrite(ctx, k, old, next, again, write) })
}

func (s *Store) tryCompareAndWrite(ctx context.Context, k credential.Key, old, next *credential.Token, again bool, write func(redis.Pipeliner)) error {
	key := s.credKey(k)
	landed := errors.New("landed")
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		raw, err := tx.Get(ctx, key).Result()
		var cur *credential.Token
		switch {
		case errors.Is(err, redis.Nil):
			err = credential.ErrNotFound
		case err != nil:
			return s.err("load for update", err)
		default:
			cur, err = s.decode(k, raw)
		}
		if again && fleet.Landed(cur, err, next) {
			return landed
		}
		if err := storekit.CompareStored(k, cur, err, old); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { write(p); return nil })
		return err
	}, key)
	switch {
	case errors.Is(err, landed):
		return nil
	case errors.Is(err, redis.TxFailedErr):
		err = fmt.Errorf("write credential %s: another process wrote it meanwhile: %w", k, credential.ErrConflict)
	case err == nil, errors.Is(err, credential.ErrConflict), errors.Is(err, credential.ErrStoreUnavailable):
	default:
		err = s.err("write", err)
	}
	if errors.Is(err, credential.ErrConflict) && s.leaseLost(ctx, k) {
		return fmt.Errorf("%w (the lock's lease ran out while this process held it, as when it is stopped; another process refreshed, and this one's set was not saved over it)", err)
	}
	return err
}

// leaseLost reports whether this process's lock on k ran out: its
// renewal said so, or the lock is no longer its own.
func (s *Store) leaseLost(ctx context.Context, k credential.Key) bool {
	s.mu.Lock()
	lost, owner := s.lost[k], s.owners[k]
	s.mu.Unlock()
	if lost || owner == "" {
		return lost
	}
	cur, err := s.rdb.Get(ctx, s.lockKey(k)).Result()
	return err == nil && cur != owner || errors.Is(err, redis.Nil)
}

// CheckWrite reports whether a save could happen now — Redis is
// reachable and writable, and this process still holds k's lock — by
// writing what a Source calls it for: the fence that k's refresh token is
// about to be redeemed, until ctx's deadline plus credential.DefaultTimeouts.Save (see
// the package doc), which k's save deletes.
func (s *Store) CheckWrite(ctx context.Context, k credential.Key, _ int) error {
	ttl := fenceTTL
	if d, ok := ctx.Deadline(); ok {
		ttl = time.Until(d) + credential.DefaultTimeouts.Save
	}
	s.mu.Lock()
	owner := s.owners[k]
	s.mu.Unlock()
	n, err := fence.Run(ctx, s.rdb, []string{s.lockKey(k), s.fenceKey(k)}, owner, s.self, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return s.err("check write", err)
	}
	if n == 0 {
		return fmt.Errorf("credential store %s: the lock's lease ran out before the refresh: %w", s.where, credential.ErrStoreUnavailable)
	}
	s.mu.Lock()
	s.fenced[k] = true
	s.mu.Unlock()
	return nil
}

// fenceTTL is how long a fence lives when the redeeming context has no
// deadline (a Source's always has one).
var fenceTTL = credential.DefaultTimeouts.Refresh + credential.DefaultTimeouts.Save

// awaitFence waits while k carries another process's fence: its holder
// may still save the set it redeemed. The fence's expiry is its
// holder's deadline.
func (s *Store) awaitFence(ctx context.Context, k credential.Key) error {
	for {
		v, err := s.rdb.Get(ctx, s.fenceKey(k)).Result()
		switch {
		case errors.Is(err, redis.Nil) || err == nil && v == s.self:
			return nil
		case err != nil:
			return err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Wait waits, without taking k's lock, until no process holds it and no
// other process's redeem is in flight (the fence), at most the lock
// timeout (credential.Waiter), looking every 2 ms and then less often, at
// most every 20 ms. A holder whose connection is gone is taken to be
// dead, as in Lock. It reports whether it waited.
func (s *Store) Wait(ctx context.Context, k credential.Key) (bool, error) {
	ctx2, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key, fk := s.lockKey(k), s.fenceKey(k)
	start, wait := time.Now(), 2*time.Millisecond
	for waited := false; ; waited = true {
		vals, err := s.rdb.MGet(ctx2, key, fk).Result()
		if err == nil && vals[0] == nil && (vals[1] == nil || vals[1] == s.self) {
			return waited, nil
		}
		if err == nil && vals[0] != nil && time.Since(start) > 250*time.Millisecond {
			conn := s.rdb.Conn()
			gone := s.holderGone(ctx2, conn, key)
			conn.Close()
			if gone {
				continue
			}
		}
		if err == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx2.Done():
				t.Stop()
				err = ctx2.Err()
			case <-t.C:
				wait = min(2*wait, 20*time.Millisecond)
				continue
			}
		}
		if ctx.Err() != nil {
			return waited, ctx.Err()
		}
		if ctx2.Err() == context.DeadlineExceeded {
			return waited, fmt.Errorf("lock credential %s in %s: held by another process for %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
		}
		return waited, s.err("wait for lock", err)
	}
}

// List returns every stored key.
func (s *Store) List(ctx context.Context) ([]credential.Key, error) {
	var keys []credential.Key
	iter := s.rdb.Scan(ctx, 0, s.prefix+"cred:*", 100).Iterator()
	for iter.Next(ctx) {
		raw, err := s.rdb.Get(ctx, iter.Val()).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.err("list", err)
		}
		var v value
		if json.Unmarshal([]byte(raw), &v) == nil {
			keys = append(keys, v.Key)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, s.err("list", err)
	}
	return keys, nil
}

// holderGone deletes the lock at key when the connection its owner named
// is no longer connected to Redis (the holder died or was cut off), and
// reports whether it did.
func (s *Store) holderGone(ctx context.Context, conn *redis.Conn, key string) bool {
	cur, err := conn.Get(ctx, key).Result()
	if err != nil {
		return errors.Is(err, redis.Nil)
	}
	_, id, ok := strings.Cut(cur, " ")
	if !ok {
		return false // an older latch's lock: wait out its lease
	}
	list, err := conn.Do(ctx, "CLIENT", "LIST", "ID", id).Text()
	if err != nil || strings.TrimSpace(list) != "" {
		return false
	}
	n, err := release.Run(ctx, conn, []string{key}, cur).Int()
	return err == nil && n == 1
}

var (
	// renew extends the lease only while the lock is still ours.
	renew = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)
	// release deletes the lock (or the fence) only while it is still ours.
	release = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)
	// fence records a redeem (KEYS[2] = ARGV[2] for ARGV[3] ms) only while
	// the lock KEYS[1] is still ARGV[1]'s (none held: ARGV[1] empty).
	fence = redis.NewScript(`if ARGV[1] ~= "" and redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3]) and 1`)
)

// Lock takes k's lock: SET NX PX with a random owner and the client ID of
// a connection held open until unlock, renewed every third of the lease
// until unlock. A waiter that finds the holder's connection gone (it
// died) deletes the lock at once instead of waiting out the lease; one
// that was only cut off is then refused at CheckWrite, and one cut off
// mid-redeem is covered by its fence. When a renewal finds the lock gone or taken,
// the lease is lost; a later Save that conflicts says so. Holding it, Lock
// then waits while another process's redeem is in flight (awaitFence).
func (s *Store) Lock(ctx context.Context, k credential.Key) (func(), error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	key := s.lockKey(k)
	ctx2, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// The lock's own connection, open until unlock: its client ID in the
	// owner lets a waiter see that the holder is gone (holderGone).
	conn := s.rdb.Conn()
	id, err := conn.ClientID(ctx2).Result()
	if err != nil {
		conn.Close()
		if ctx2.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return nil, fmt.Errorf("lock credential %s in %s: %w", k, s.where, credential.ErrLockTimeout)
		}
		return nil, s.err("lock", err)
	}
	owner := fmt.Sprintf("%s %d", hex.EncodeToString(b), id)
	wait := 10 * time.Millisecond
	start := time.Now()
	for {
		ok, err := conn.SetNX(ctx2, key, owner, s.lease).Result()
		if err != nil {
			conn.Close()
			if ctx2.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				return nil, fmt.Errorf("lock credential %s in %s: %w", k, s.where, credential.ErrLockTimeout)
			}
			return nil, s.err("lock", err)
		}
		if ok {
			break
		}
		// A hand-off takes milliseconds; ask whether the holder is alive
		// only once a wait has lasted.
		if time.Since(start) > 250*time.Millisecond && s.holderGone(ctx2, conn, key) {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx2.Done():
			t.Stop()
			conn.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("lock credential %s in %s: held by another process for %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
		case <-t.C:
		}
		wait = min(2*wait, 25*time.Millisecond)
	}
	s.mu.Lock()
	delete(s.lost, k)
	s.owners[k] = owner
	s.mu.Unlock()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
				n, err := renew.Run(rctx, s.rdb, []string{key}, owner, s.lease.Milliseconds()).Int()
				cancel()
				if err == nil && n == 0 {
					s.mu.Lock()
					s.lost[k] = true
					s.mu.Unlock()
					return
				}
			}
		}
	}()
	unlock := func() {
		close(stop)
		<-done
		s.mu.Lock()
		delete(s.owners, k)
		fenced := s.fenced[k]
		delete(s.fenced, k)
		s.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if fenced {
			// A redeem that did not end in a save: no one is redeeming
			// any more. Before the lock goes, or the next holder waits.
			_ = release.Run(rctx, s.rdb, []string{s.fenceKey(k)}, s.self).Err()
		}
		_ = release.Run(rctx, s.rdb, []string{key}, owner).Err()
		conn.Close()
	}
	if err := s.awaitFence(ctx2, k); err != nil {
		unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ctx2.Err() != nil {
			return nil, fmt.Errorf("lock credential %s in %s: another process's lease ran out mid-refresh; its save did not come within %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
		}
		return nil, s.err("lock", err)
	}
	return unlock, nil
}
