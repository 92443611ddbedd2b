package latch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
)

// TestPutBindsTheKey: a login's token carries the issuer and client but
// no account; Put under Key("acme") stores a set that says acme (the
// README's own example once stored Account "" under acme).
func TestPutBindsTheKey(t *testing.T) {
	ctx := context.Background()
	cfg := &latch.Config{Issuer: "https://as", ClientID: "cli"}
	k := cfg.Key("acme")
	st := &storekit.Memory{}
	tok := &latch.Token{AccessToken: "at", Issuer: cfg.Issuer, ClientID: cfg.ClientID}
	if err := storekit.Put(ctx, st, k, tok); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key() != k {
		t.Errorf("stored set says %s, stored under %s", got.Key(), k)
	}
	if tok.Account != "" {
		t.Error("Put changed the caller's token")
	}

	// A set bound to another credential is refused, and nothing is written.
	other := &latch.Token{AccessToken: "at2", Issuer: "https://other", ClientID: "cli"}
	err = storekit.Put(ctx, st, cfg.Key("beta"), other)
	if err == nil || !strings.Contains(err.Error(), "https://other") {
		t.Fatalf("Put of another issuer's set: got %v, want an error naming it", err)
	}
	if _, err := st.Load(ctx, cfg.Key("beta")); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("after the refused Put: Load got %v, want ErrNotFound", err)
	}
}

// TestSourceBindsStoredSet: a set stored with no account under acme (by
// an older version) is used as acme's, and the next refresh stores it so.
func TestSourceBindsStoredSet(t *testing.T) {
	as := newRotatingServer(t)
	tok := as.login()
	k := tok.Key()
	k.Account = "acme"
	st := &storekit.Memory{}
	st.Save(context.Background(), k, nil, tok) // Account "" under acme
	src := &latch.Source{Config: as.config(), Store: st, Key: k}
	got, err := src.Refresh(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Account != "acme" {
		t.Errorf("refreshed set's account = %q, want acme", got.Account)
	}
	saved, _ := st.Load(context.Background(), k)
	if saved.Key() != k {
		t.Errorf("saved set says %s, stored under %s", saved.Key(), k)
	}

	// One stored under acme that says beta is refused.
	bad := *saved
	bad.Account = "beta"
	st2 := &storekit.Memory{}
	st2.Save(context.Background(), k, nil, &bad)
	src2 := &latch.Source{Config: as.config(), Store: st2, Key: k}
	if _, err := src2.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("set of beta under acme: got %v, want a refusal", err)
	}
}
