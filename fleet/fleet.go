// Package fleet holds what the fleet stores (pgstore, redisstore) share:
// a save that outlasts a database restart.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

// Retry runs try, and again while it fails with latch.ErrStoreUnavailable,
// backing off from 50 ms to 500 ms, until ctx ends: a refresh's save must
// outlast a database restart, or the rotated token is lost. try is told
// whether an earlier try ran, whose write may have landed though its
// answer was lost (see Landed).
func Retry(ctx context.Context, try func(again bool) error) error {
	wait := 50 * time.Millisecond
	for n := 0; ; n++ {
		err := try(n > 0)
		if err == nil || !errors.Is(err, latch.ErrStoreUnavailable) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Landed reports whether a compare-and-swap that is tried again already
// happened: the store holds next (a save), or nothing (a delete, next nil).
// cur and err are what the store's load under the compare gave.
func Landed(cur *latch.Token, err error, next *latch.Token) bool {
	if next == nil {
		return errors.Is(err, latch.ErrNotFound)
	}
	return err == nil && cur.Matches(next)
}

// AuthError is a fleet store's server refusing the credentials latch
// presented (PostgreSQL's SQLSTATE class 28, Redis' WRONGPASS or NOAUTH):
// a person must fix the password; trying again cannot help. It is not
// latch.ErrStoreUnavailable.
type AuthError struct {
	Server string // "PostgreSQL", "Redis"
	User   string // "" when no password was sent and one is required
	Where  string // the store, without a password
	Err    error
}

func (e *AuthError) Error() string {
	if e.User == "" {
		return fmt.Sprintf("credential store %s: %s requires a password", e.Where, e.Server)
	}
	return fmt.Sprintf("credential store %s: %s refused the password for user %s", e.Where, e.Server, e.User)
}

func (e *AuthError) Unwrap() error { return e.Err }
