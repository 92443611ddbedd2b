package filestore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
)

var (
	ctx = context.Background()
	key = latch.Key{Issuer: "https://issuer.example", ClientID: "cli", Account: "acme"}
)

// gen returns generation g's token set: size bytes of secret derived from
// g, so a reader can tell exactly which generation it holds.
func gen(g uint64, size int) *latch.Token {
	r := (rand.NewChaCha8([32]byte{byte(g), byte(g >> 8), byte(g >> 16), byte(g >> 24)}))
	b := make([]byte, size/2)
	_, _ = r.Read(b)
	return &latch.Token{
		AccessToken:  "at-" + hex.EncodeToString(b),
		RefreshToken: fmt.Sprintf("rt-%d", g),
		TokenType:    "Bearer",
		Issuer:       key.Issuer, ClientID: key.ClientID, Account: key.Account,
		Expiry:     time.Unix(1700000000+int64(g), 0).UTC(),
		Generation: g,
	}
}

func equal(a, b *latch.Token) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.Generation == b.Generation && a.Expiry.Equal(b.Expiry)
}

func TestRoundTripListDelete(t *testing.T) {
	s := New(t.TempDir())
	if _, err := s.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("empty store: got %v, want ErrNotFound", err)
	}
	if keys, err := s.List(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("empty List: got %v, %v", keys, err)
	}
	other := latch.Key{Issuer: "https://other.example", ClientID: "cli"}
	for _, k := range []latch.Key{key, other} {
		if err := s.Save(ctx, k, nil, gen(1, 64)); err != nil {
			t.Fatal(err)
		}
	}
	if err := storekit.Put(ctx, s, key, gen(2, 64)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, key)
	if err != nil || !equal(got, gen(2, 64)) {
		t.Fatalf("Load: got %+v, %v; want generation 2", got, err)
	}
	keys, err := s.List(ctx)
	slices.SortFunc(keys, func(a, b latch.Key) int { return strings.Compare(a.Issuer, b.Issuer) })
	if err != nil || !slices.Equal(keys, []latch.Key{key, other}) {
		t.Fatalf("List: got %v, %v; want both keys", keys, err)
	}
	if err := s.Delete(ctx, key, gen(2, 64)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key, nil); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := s.Load(ctx, key); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("after Delete: got %v, want ErrNotFound", err)
	}
	if got, err := s.Load(ctx, other); err != nil || got.Generation != 1 {
		t.Fatalf("other key: got %+v, %v", got, err)
	}
}

// DefaultDir is the program's own directory, and reads no LATCH_ variable.
func TestDefaultDir(t *testing.T) {
	t.Setenv("LATCH_CONFIG_DIR", "/custom/latch")
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if d, err := DefaultDir("my-cli"); err != nil || d != "/xdg/my-cli" {
		t.Fatalf("DefaultDir(my-cli) = %q, %v; want /xdg/my-cli", d, err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := New(t.TempDir())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := storekit.Put(ctx, New(s.Dir()), key, gen(uint64(w*100+i+1), 2048)); err != nil {
					t.Error(err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				got, err := s.Load(ctx, key)
				if errors.Is(err, latch.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if !equal(got, gen(got.Generation, 2048)) {
					t.Errorf("generation %d: torn or mixed token set", got.Generation)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := s.Load(ctx, key); err != nil {
		t.Fatal(err)
	}
}
