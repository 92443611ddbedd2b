package keyring

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

var ctx = context.Background()

// realStore returns a Store under a fresh service name in the real
// keyring, removing its items at cleanup. It skips without a session bus.
func realStore(t testing.TB) *Store {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session bus: run inside `dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets; go test ...'`")
	}
	s := New(fmt.Sprintf("latch-test-%d", rand.Uint64()))
	if h := s.Probe(ctx); !h.OK {
		t.Fatalf("session bus present but keyring unusable: %s (%s)", h.Message, h.Reason)
	}
	t.Cleanup(func() {
		for _, k := range []latch.Key{key, big} {
			_ = s.Remove(ctx, k)
		}
		_ = s.del(ctx, "cleanup", indexUser)
	})
	return s
}

var (
	key = latch.Key{Issuer: "https://issuer.example", ClientID: "cli", Account: "acme"}
	big = latch.Key{Issuer: "https://issuer.example", ClientID: "cli", Account: "big"}
)

func token(at string, g uint64) *latch.Token {
	return &latch.Token{AccessToken: at, RefreshToken: "rt-" + at[:min(8, len(at))], TokenType: "Bearer",
		Expiry: time.Unix(1700000000, 0).UTC(), Generation: g}
}

func TestRealKeyring(t *testing.T) {
	s := realStore(t)
	if _, err := s.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("empty: got %v, want ErrNotFound", err)
	}
	var prev *latch.Token
	for g, at := range []string{"first", "second"} {
		if prev != nil {
			if err := s.Save(ctx, key, nil, token(at, uint64(g))); !errors.Is(err, latch.ErrConflict) {
				t.Fatalf("save %s over %s with no old: got %v, want ErrConflict", at, prev.AccessToken, err)
			}
		}
		if err := s.Save(ctx, key, prev, token(at, uint64(g))); err != nil {
			t.Fatalf("save %s: %v", at, err)
		}
		prev = token(at, uint64(g))
		got, err := s.Load(ctx, key)
		if err != nil || got.AccessToken != at || got.Generation != uint64(g) {
			t.Fatalf("load after saving %s: got %+v, %v", at, got, err)
		}
	}
	large := strings.Repeat("x", 64<<10)
	if err := s.Save(ctx, big, nil, token(large, 7)); err != nil {
		t.Fatalf("save 64 KiB: %v", err)
	}
	if got, err := s.Load(ctx, big); err != nil || got.AccessToken != large {
		t.Fatalf("load 64 KiB: %v", err)
	}
	keys, err := s.List(ctx)
	if err != nil || !slices.Contains(keys, key) || !slices.Contains(keys, big) || len(keys) != 2 {
		t.Fatalf("List: got %v, %v; want both keys", keys, err)
	}
	if err := s.CheckWrite(ctx, key, 0); err != nil {
		t.Fatalf("CheckWrite: %v", err)
	}
	for _, k := range []latch.Key{key, big} {
		cur, _ := s.Load(ctx, k)
		if err := s.Delete(ctx, k, nil); !errors.Is(err, latch.ErrConflict) {
			t.Fatalf("Delete with no old: got %v, want ErrConflict", err)
		}
		if err := s.Delete(ctx, k, cur); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, k); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("after Delete: got %v, want ErrNotFound", err)
		}
	}
	if err := s.Delete(ctx, key, nil); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if keys, err := s.List(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("List after Delete: got %v, %v", keys, err)
	}
}

func TestErrorMatching(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		want error
	}{
		{ReasonTooLarge, ErrTooLarge},
		{ReasonMismatch, ErrTooLarge},
		{ReasonReadOnly, latch.ErrStoreReadOnly},
		{ReasonLocked, latch.ErrStoreUnavailable},
		{ReasonNoBus, latch.ErrStoreUnavailable},
	} {
		if err := (&Error{Op: "save", Reason: tc.r}); !errors.Is(err, tc.want) {
			t.Errorf("reason %s: does not match %v", tc.r, tc.want)
		}
	}
}

func failingLocker(context.Context) (func(), error) {
	return nil, errors.New("index lock unavailable")
}

// TestIndexIsHonest: List names every stored credential, because a first
// Save that cannot list its key writes nothing; a rotation's Save does
// not touch the index at all.
func TestIndexIsHonest(t *testing.T) {
	s := realStore(t)
	s.IndexLock = failingLocker
	if err := s.Save(ctx, key, nil, token("first", 1)); err == nil || !strings.Contains(err.Error(), "index lock unavailable") {
		t.Fatalf("first Save with the index unwritable: got %v, want its error", err)
	}
	if _, err := s.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("after the failed first Save: Load got %v, want ErrNotFound (nothing stored unlisted)", err)
	}
	s.IndexLock = nil
	if err := s.Save(ctx, key, nil, token("first", 1)); err != nil {
		t.Fatal(err)
	}
	s.IndexLock = failingLocker
	if err := s.Save(ctx, key, token("first", 1), token("second", 2)); err != nil {
		t.Fatalf("rotation with the index unwritable: %v (a rotation must not need the index)", err)
	}
	if keys, err := s.List(ctx); err != nil || !slices.Equal(keys, []latch.Key{key}) {
		t.Fatalf("List = %v, %v; want [%v]", keys, err, key)
	}
}
