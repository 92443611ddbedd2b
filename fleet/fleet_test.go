package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func TestRetry(t *testing.T) {
	n := 0
	err := Retry(context.Background(), func(again bool) error {
		if again != (n > 0) {
			t.Fatalf("try %d: again = %v", n, again)
		}
		n++
		if n < 3 {
			return fmt.Errorf("down: %w", latch.ErrStoreUnavailable)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Retry: %v after %d tries, want nil after 3", err, n)
	}
	n = 0
	if err := Retry(context.Background(), func(bool) error { n++; return latch.ErrConflict }); !errors.Is(err, latch.ErrConflict) || n != 1 {
		t.Fatalf("a conflict is not retried: %v after %d tries", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	if err := Retry(ctx, func(bool) error { return latch.ErrStoreUnavailable }); !errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("Retry past its context: %v", err)
	}
}

func TestLanded(t *testing.T) {
	a := &latch.Token{AccessToken: "a", RefreshToken: "r", Lineage: "l", Generation: 1}
	b := &latch.Token{AccessToken: "b", RefreshToken: "r2", Lineage: "l", Generation: 2}
	switch {
	case !Landed(b, nil, b):
		t.Error("a save whose set is stored did not land")
	case Landed(a, nil, b):
		t.Error("a save whose set is not stored landed")
	case !Landed(nil, latch.ErrNotFound, nil):
		t.Error("a delete of a gone credential did not land")
	case Landed(a, nil, nil):
		t.Error("a delete of a stored credential landed")
	}
}
