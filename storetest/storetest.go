// Package storetest checks a credential.Store against the contract every store
// keeps: compare-and-swap Save and Delete, a Locker that excludes (a
// redeem in flight too), a Waiter that waits without taking the lock, and
// secrets that never appear in its errors. A store outside this module
// runs it from its own tests: storetest.Run(t, st, k).
package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/storekit"
)

// Token returns a token set for k, generation gen.
func Token(k credential.Key, lineage string, gen uint64) *credential.Token {
	return &credential.Token{AccessToken: "at-" + lineage + "-" + string(rune('a'+gen%26)), RefreshToken: "rt-" + lineage,
		TokenType: "Bearer", Expiry: time.Now().Add(time.Hour).Round(0), IssuedAt: time.Now().Round(0),
		Issuer: k.Issuer, ClientID: k.ClientID, Account: k.Account, Lineage: lineage, Generation: gen}
}

// Run checks st, which must be empty for k.
func Run(t *testing.T, st credential.Store, k credential.Key) {
	ctx := context.Background()
	if _, err := st.Load(ctx, k); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("Load of nothing: %v, want ErrNotFound", err)
	}
	a := Token(k, "lin-a", 0)
	if err := st.Save(ctx, k, a, a); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("Save over nothing with an old set: %v, want ErrConflict", err)
	}
	if err := st.Save(ctx, k, nil, a); err != nil {
		t.Fatalf("first Save: %v", err)
	}
	got, err := st.Load(ctx, k)
	if err != nil || !got.Matches(a) || got.Expiry.Unix() != a.Expiry.Unix() {
		t.Fatalf("Load after Save: %+v, %v", got, err)
	}
	if err := st.Save(ctx, k, nil, a); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("Save with nil old over a set: %v, want ErrConflict", err)
	}
	b := Token(k, "lin-a", 1)
	if err := st.Save(ctx, k, a, b); err != nil {
		t.Fatalf("Save a→b: %v", err)
	}
	if err := st.Save(ctx, k, a, Token(k, "lin-a", 2)); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale Save a→c: %v, want ErrConflict", err)
	}
	if err := st.Delete(ctx, k, a); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale Delete: %v, want ErrConflict", err)
	}
	if got, _ := st.Load(ctx, k); !got.Matches(b) {
		t.Fatalf("after stale writes: %+v, want b", got)
	}
	if l, ok := st.(credential.Lister); ok {
		keys, err := l.List(ctx)
		if err != nil || len(keys) != 1 || keys[0] != k {
			t.Fatalf("List: %v, %v", keys, err)
		}
	}
	if err := st.Delete(ctx, k, b); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.Load(ctx, k); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("Load after Delete: %v", err)
	}

	// The lock excludes: 8 goroutines, one at a time inside.
	lk := storekit.LockerOf(st)
	if lk == nil {
		t.Fatal("the store is no Locker")
	}
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock, err := lk.Lock(ctx, k)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
	// A redeem in flight (CheckWrite, then the token request) still
	// excludes the others of this process until its save and unlock:
	// two Sources on one Store must not both redeem.
	if wc, ok := st.(credential.WriteChecker); ok {
		cur := Token(k, "lin-r", 0)
		if err := st.Save(ctx, k, nil, cur); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		for range 4 {
			wg.Go(func() {
				unlock, err := lk.Lock(ctx, k)
				if err != nil {
					t.Error(err)
					return
				}
				defer unlock()
				if err := wc.CheckWrite(ctx, k, 2048); err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(20 * time.Millisecond) // the token request
				inside.Add(-1)
				mu.Lock()
				defer mu.Unlock()
				old, err := st.Load(ctx, k)
				if err != nil {
					t.Error(err)
					return
				}
				if err := st.Save(ctx, k, old, Token(k, "lin-r", old.Generation+1)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if most.Load() != 1 {
			t.Fatalf("%d redeems in flight at once in one process", most.Load())
		}
		cur, _ = st.Load(ctx, k)
		if err := st.Delete(ctx, k, cur); err != nil {
			t.Fatal(err)
		}
	}
	// A held lock makes another Lock wait until its ctx ends.
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if u, err := lk.Lock(sctx, k); err == nil {
		u()
		t.Fatal("a second Lock succeeded while the first was held")
	}
	cancel()
	unlock()
}

// RunWaiter checks a credential.Waiter: holder and waiter are two stores on
// the same data, as two processes would open it (empty for k). Wait
// returns at once, reporting no wait, when the lock is free; while the
// lock or a redeem in flight (CheckWrite, for a WriteChecker) is held it
// waits, without taking the lock, until the save and unlock, then
// reports that it waited; it ends with its ctx.
func RunWaiter(t *testing.T, holder, waiter credential.Store, k credential.Key) {
	ctx := context.Background()
	w, ok := storekit.LockerOf(waiter).(credential.Waiter)
	if !ok {
		t.Fatal("the store is no Waiter")
	}
	lk := storekit.LockerOf(holder)
	if waited, err := w.Wait(ctx, k); waited || err != nil {
		t.Fatalf("Wait on a free lock: waited %v, %v; want at once, no error", waited, err)
	}
	a := Token(k, "lin-w", 0)
	if err := holder.Save(ctx, k, nil, a); err != nil {
		t.Fatal(err)
	}
	unlock, err := lk.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if wc, ok := holder.(credential.WriteChecker); ok {
		if err := wc.CheckWrite(ctx, k, 2048); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		waited bool
		err    error
	}
	done := make(chan result, 1)
	go func() {
		waited, err := w.Wait(ctx, k)
		done <- result{waited, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Wait returned (%v, %v) while a redeem was in flight", r.waited, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := holder.Save(ctx, k, a, Token(k, "lin-w", 1)); err != nil {
		t.Fatal(err)
	}
	unlock()
	select {
	case r := <-done:
		if !r.waited || r.err != nil {
			t.Fatalf("Wait after the save: waited %v, %v; want waited, no error", r.waited, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still waiting 5 s after the save and unlock")
	}
	// Wait took nothing: the lock is free at once.
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	u, err := storekit.LockerOf(waiter).Lock(sctx, k)
	cancel()
	if err != nil {
		t.Fatalf("Lock after Wait: %v", err)
	}
	u()
	// A held lock keeps Wait until its ctx ends.
	unlock, err = lk.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := w.Wait(sctx, k); err == nil {
		t.Fatal("Wait returned no error while the lock was held to its ctx's end")
	}
	cancel()
	unlock()
	cur, _ := holder.Load(ctx, k)
	if err := holder.Delete(ctx, k, cur); err != nil {
		t.Fatal(err)
	}
}
