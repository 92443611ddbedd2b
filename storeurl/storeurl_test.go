package storeurl_test

import (
	"context"
	"testing"

	_ "github.com/latchdev/latch/pgstore"
	_ "github.com/latchdev/latch/redisstore"
	"github.com/latchdev/latch/storeurl"
)

func TestLookup(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://latch@db/latch": "postgres", "postgresql://db": "postgres", "POSTGRES://db": "postgres",
		"redis://127.0.0.1:6379/0": "redis", "rediss://cache": "redis",
		"mysql://db": "", "postgres": "", "file": "", "": "",
	} {
		k, ok := storeurl.Lookup(raw)
		if ok != (want != "") || k.ID != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", raw, k.ID, ok, want)
		}
	}
	if k, ok := storeurl.ByID("postgres"); !ok || k.Name != "PostgreSQL" || k.PasswordElsewhere == "" {
		t.Errorf("ByID(postgres) = %+v, %v", k, ok)
	}
	if got, want := storeurl.Forms(), "a postgres:// URL or a redis:// URL"; got != want {
		t.Errorf("Forms() = %q, want %q", got, want)
	}
}

func TestRegisterRefusesATakenScheme(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second kind for redis:// was registered")
		}
	}()
	storeurl.Register(storeurl.Kind{ID: "redis2", Name: "Another Redis", Schemes: []string{"redis"},
		Open: func(context.Context, string, storeurl.Options) (storeurl.Store, error) { return nil, nil }})
}
