// Package keyring keeps credentials in the OS keyring (macOS Keychain,
// Windows Credential Manager, the freedesktop Secret Service on Linux) over
// github.com/zalando/go-keyring. See LESSONS.md 12 and 13.
//
// Each credential is one item, so its access and refresh tokens change
// together: the item's user is a stable JSON form of the credential.Key and its
// value the key and the whole token set as JSON. Every call is bounded
// (Timeout, default 3 s): with a D-Bus but no Secret Service go-keyring can
// hang for a minute. Every write is read back and compared, which catches
// macOS's false success near 4096 bytes (go-keyring #153). A set too large
// for the platform is refused before anything is written, with an error
// matching ErrTooLarge, so the caller can keep it elsewhere.
package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/storekit"
)

// DefaultTimeout bounds each keyring call.
const DefaultTimeout = 3 * time.Second

// ErrTooLarge: the token set does not fit in one keyring item on this
// platform (macOS about 3 KB, Windows 2560 bytes). Nothing was written.
var ErrTooLarge = errors.New("token set too large for the keyring")

// Reason says why the keyring is unusable.
type Reason string

// Reasons reported by Probe and carried by *Error.
const (
	ReasonOK              Reason = ""
	ReasonNoBus           Reason = "no-session-bus"
	ReasonNoSecretService Reason = "no-secret-service"
	ReasonLocked          Reason = "locked"
	ReasonTimeout         Reason = "timeout"
	ReasonReadOnly        Reason = "read-only"
	ReasonTooLarge        Reason = "too-large"
	ReasonMismatch        Reason = "read-back-mismatch"
	ReasonCorrupt         Reason = "corrupt"
	ReasonError           Reason = "error"
)

// Health is the outcome of Probe: OK, or why the keyring is unusable.
type Health struct {
	OK      bool
	Reason  Reason
	Message string // one line for a person, e.g. "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)"
}

func (h Health) String() string {
	if h.OK {
		return "ok"
	}
	return h.Message
}

// Error is a keyring call that did not succeed. It matches ErrTooLarge
// (too large, read-back mismatch), credential.ErrStoreReadOnly (read-only) or
// credential.ErrStoreUnavailable (everything else). It never holds a secret.
type Error struct {
	Op     string // "load", "save", "delete", "probe"
	Reason Reason
	Msg    string
	Err    error // cause, may be nil
}

func (e *Error) Error() string {
	s := "keyring " + e.Op + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel e matches and its cause.
func (e *Error) Unwrap() []error {
	var sentinel error
	switch e.Reason {
	case ReasonTooLarge, ReasonMismatch:
		sentinel = ErrTooLarge
	case ReasonReadOnly:
		sentinel = credential.ErrStoreReadOnly
	case ReasonCorrupt:
		sentinel = credential.ErrUnusable
	default:
		sentinel = credential.ErrStoreUnavailable
	}
	return []error{sentinel, e.Err}
}

// Health returns the health e implies.
func (e *Error) Health() Health { return Health{Reason: e.Reason, Message: e.Msg} }

// Store is a credential.Store in the OS keyring under one service name. It also
// implements credential.Lister through an index item, since keyrings cannot be
// searched portably: a key is added to it before the first set of a
// credential is written, so List names every credential stored here
// (rotations do not touch it). It is safe for concurrent use. Set fields
// before first use.
type Store struct {
	service string
	// Timeout bounds each keyring call; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxSize, when positive, caps the item size below the platform's
	// limit; a larger set is refused with ErrTooLarge.
	MaxSize int
	// IndexLock, when set, serialises index updates across processes:
	// it takes a lock that guards the index item (no credential's) and
	// returns its unlock.
	IndexLock func(ctx context.Context) (unlock func(), err error)

	mu sync.Mutex // serialises index updates in the process
}

var (
	_ credential.Store        = (*Store)(nil)
	_ credential.WriteChecker = (*Store)(nil)
	_ credential.Lister       = (*Store)(nil)
)

// New returns a Store for service, e.g. "latch".
func New(service string) *Store { return &Store{service: service} }

// Service returns the keyring service name.
func (s *Store) Service() string { return s.service }

const (
	indexUser = "latch-index" // item listing the stored keys
	probeUser = "latch-probe" // item written and removed by Probe
)

// User returns the item user name for k: its JSON form, stable and
// unambiguous. It never collides with the index or probe items.
func User(k credential.Key) string {
	b, _ := json.Marshal(k)
	return string(b)
}

type item struct {
	Version int               `json:"version"`
	Key     credential.Key    `json:"key"`
	Token   *credential.Token `json:"token"`
}

func (s *Store) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// call runs fn in a goroutine and gives up after the timeout or when ctx
// ends. A call given up on keeps running in the background: go-keyring
// cannot be interrupted, and the process is expected to move on.
func (s *Store) call(ctx context.Context, op string, fn func() error) error {
	if err := busCheck(op); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return classify(op, err)
	case <-ctx.Done():
		return &Error{Op: op, Reason: ReasonTimeout,
			Msg: fmt.Sprintf("no answer from the keyring within %s", s.timeout()), Err: ctx.Err()}
	}
}

func (s *Store) get(ctx context.Context, op, user string) (string, error) {
	var v string
	err := s.call(ctx, op, func() error {
		var err error
		v, err = gokeyring.Get(s.service, user)
		return err
	})
	return v, err
}

func (s *Store) set(ctx context.Context, op, user, value string) error {
	max, big := tooLarge(s.service, user, value)
	if s.MaxSize > 0 && len(value) > s.MaxSize && (max == 0 || s.MaxSize < max) {
		max, big = s.MaxSize, true
	}
	if big {
		return &Error{Op: op, Reason: ReasonTooLarge,
			Msg: fmt.Sprintf("token set is %d bytes; this keyring holds at most %d", len(value), max)}
	}
	if err := s.call(ctx, op, func() error { return gokeyring.Set(s.service, user, value) }); err != nil {
		return err
	}
	got, err := s.get(ctx, op, user)
	if err != nil {
		return fmt.Errorf("keyring %s: read back: %w", op, err)
	}
	if got != value {
		return &Error{Op: op, Reason: ReasonMismatch,
			Msg: fmt.Sprintf("keyring kept %d of %d bytes (a write it reported as done was not)", len(got), len(value))}
	}
	return nil
}

func (s *Store) del(ctx context.Context, op, user string) error {
	err := s.call(ctx, op, func() error { return gokeyring.Delete(s.service, user) })
	if errors.Is(err, credential.ErrNotFound) {
		return nil
	}
	return err
}

// Load returns k's token set, or an error matching credential.ErrNotFound.
func (s *Store) Load(ctx context.Context, k credential.Key) (*credential.Token, error) {
	v, err := s.get(ctx, "load", User(k))
	if err != nil {
		return nil, err
	}
	var it item
	if err := json.Unmarshal([]byte(v), &it); err != nil || it.Token == nil || it.Key != k {
		return nil, &Error{Op: "load", Reason: ReasonCorrupt,
			Msg: fmt.Sprintf("item for %s is not a credential (%d bytes of something else); log in again to replace it", k, len(v))}
	}
	return it.Token, nil
}

// Save stores t as k's item, if the item still holds old (credential.Store's
// compare-and-swap; the caller holds k's lock), and reads it back. A set
// too large for the platform is refused with an error matching
// ErrTooLarge, leaving the old item in place. A first set (nil old) is
// listed in the index before it is written; a rotation costs no index
// call.
func (s *Store) Save(ctx context.Context, k credential.Key, old, t *credential.Token) error {
	if t == nil {
		return errors.New("keyring save: nil token")
	}
	if err := s.compare(ctx, k, old); err != nil {
		return err
	}
	b, err := json.Marshal(item{Version: 1, Key: k, Token: t})
	if err != nil {
		return fmt.Errorf("keyring save: %w", err)
	}
	if old == nil {
		err := s.updateIndex(ctx, func(keys []credential.Key) []credential.Key {
			if slices.Contains(keys, k) {
				return nil
			}
			return append(keys, k)
		})
		if err != nil {
			return fmt.Errorf("keyring save: list the credential: %w", err)
		}
	}
	return s.set(ctx, "save", User(k), string(b))
}

// compare checks that k's item holds old (nil: nothing usable).
func (s *Store) compare(ctx context.Context, k credential.Key, old *credential.Token) error {
	cur, err := s.Load(ctx, k)
	return storekit.CompareStored(k, cur, err, old)
}

// Delete removes k's item if it still holds old (nil: nothing usable).
// Deleting a missing item with a nil old is not an error.
func (s *Store) Delete(ctx context.Context, k credential.Key, old *credential.Token) error {
	if err := s.compare(ctx, k, old); err != nil {
		return err
	}
	return s.Remove(ctx, k)
}

// Remove deletes k's item whatever it holds: for a copy that no longer
// counts, such as one the file store has replaced. It then drops k from
// the index; if that fails, List may name k until the next Remove.
func (s *Store) Remove(ctx context.Context, k credential.Key) error {
	if err := s.del(ctx, "delete", User(k)); err != nil {
		return err
	}
	_ = s.updateIndex(ctx, func(keys []credential.Key) []credential.Key {
		i := slices.Index(keys, k)
		if i < 0 {
			return nil
		}
		return slices.Delete(keys, i, i+1)
	})
	return nil
}

// CheckWrite reports whether k's replacement could be saved, by writing,
// reading back and removing a probe item. Size does not matter to a
// keyring's free space; a set too large for an item is found by Save.
func (s *Store) CheckWrite(ctx context.Context, _ credential.Key, _ int) error {
	// A name of its own per call: processes checking at once must not
	// delete each other's probe between write and read-back.
	user := fmt.Sprintf("%s-%016x", probeUser, rand.Uint64())
	if err := s.set(ctx, "check write", user, "ok"); err != nil {
		return err
	}
	return s.del(ctx, "check write", user)
}

// List returns the keys recorded in the index item: every credential
// saved through a Store of this service, and perhaps one whose removal
// could not update the index.
func (s *Store) List(ctx context.Context) ([]credential.Key, error) {
	keys, err := s.index(ctx)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return keys, nil
}

func (s *Store) index(ctx context.Context) ([]credential.Key, error) {
	v, err := s.get(ctx, "list", indexUser)
	if errors.Is(err, credential.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []credential.Key
	if err := json.Unmarshal([]byte(v), &keys); err != nil {
		return nil, nil // a broken index is rebuilt by the next Save
	}
	return keys, nil
}

// updateIndex applies edit to the index; edit returns nil for no change.
func (s *Store) updateIndex(ctx context.Context, edit func([]credential.Key) []credential.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.IndexLock != nil {
		unlock, err := s.IndexLock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	keys, err := s.index(ctx)
	if err != nil {
		return err
	}
	next := edit(keys)
	if next == nil {
		return nil
	}
	b, _ := json.Marshal(next)
	return s.set(ctx, "save index", indexUser, string(b))
}

// classify turns a go-keyring or D-Bus error into an *Error, or a
// credential.ErrNotFound for a missing item.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gokeyring.ErrNotFound) {
		return fmt.Errorf("keyring %s: %w", op, credential.ErrNotFound)
	}
	if errors.Is(err, gokeyring.ErrSetDataTooBig) {
		return &Error{Op: op, Reason: ReasonTooLarge, Msg: "token set too large for this keyring", Err: err}
	}
	if r, msg, ok := classifyPlatform(err); ok {
		return &Error{Op: op, Reason: r, Msg: msg, Err: err}
	}
	return &Error{Op: op, Reason: ReasonError, Msg: "keyring call did not succeed", Err: err}
}

// Probe reports whether the keyring under service "latch" can be used.
func Probe(ctx context.Context) Health { return New("latch").Probe(ctx) }

// Probe reports whether s can be used and, if not, why. It checks the
// platform's plumbing (on Linux: session bus, Secret Service, locked
// collection), then writes, reads back and removes a probe item. The whole
// probe is bounded by s.Timeout.
func (s *Store) Probe(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if h := probePlatform(ctx, s.timeout()); !h.OK {
		return h
	}
	err := s.CheckWrite(ctx, credential.Key{}, 0)
	var ke *Error
	switch {
	case err == nil:
		return Health{OK: true}
	case errors.As(err, &ke):
		return ke.Health()
	default:
		return Health{Reason: ReasonError, Message: err.Error()}
	}
}
