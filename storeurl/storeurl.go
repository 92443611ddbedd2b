// Package storeurl opens a credential store that a URL names
// (postgres://…, redis://…): a registry of store kinds, one entry per
// kind, which each store's package adds itself to. A program that
// imports a store package (for its side effect, as database/sql drivers
// are imported) can then open it from `--credential-store URL`, list it
// in its help text and complete it in a shell.
package storeurl

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/latchdev/latch/credential"
)

// Kind is a store kind a URL can name.
type Kind struct {
	// ID names the kind where it is recorded (a host's config entry): the
	// first scheme, "postgres".
	ID string
	// Name is the kind for people: "PostgreSQL".
	Name string
	// Schemes are the URL schemes that name it: "postgres", "postgresql".
	Schemes []string
	// PasswordElsewhere says where else its server's password may be kept
	// than in the URL, for the message that refuses a password on a
	// command line: "PGPASSWORD or a pgpass file". Empty: nowhere else.
	PasswordElsewhere string
	// Open opens the store the URL names.
	Open func(ctx context.Context, url string, o Options) (Store, error)
}

// Options are what a program gives every store it opens from a URL.
type Options struct {
	// Key is the 32-byte key the token sets are sealed with (package
	// sealed); nil with Plaintext stores them in the clear.
	Key       []byte
	Plaintext bool
}

// Store is what a kind opens: a store shared by many processes and
// machines, with its lock and list, shown (String) without a password.
type Store interface {
	credential.Store
	credential.Locker
	credential.Lister
	String() string
	Close() error
}

var (
	mu    sync.RWMutex
	kinds []Kind
)

// Register adds a kind; it panics if a scheme is taken or the kind is
// incomplete (a program that registers two stores for one scheme is
// wrong from its start). Store packages call it from init.
func Register(k Kind) {
	if k.ID == "" || k.Name == "" || len(k.Schemes) == 0 || k.Open == nil {
		panic("storeurl: Register of an incomplete kind")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, have := range kinds {
		for _, s := range k.Schemes {
			if slices.Contains(have.Schemes, s) {
				panic("storeurl: scheme " + s + " registered twice")
			}
		}
	}
	kinds = append(kinds, k)
	slices.SortFunc(kinds, func(a, b Kind) int { return strings.Compare(a.ID, b.ID) })
}

// Kinds returns the registered kinds, by ID.
func Kinds() []Kind {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Clone(kinds)
}

// Lookup returns the kind whose scheme raw starts with ("scheme://"),
// or false.
func Lookup(raw string) (Kind, bool) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return Kind{}, false
	}
	mu.RLock()
	defer mu.RUnlock()
	for _, k := range kinds {
		if slices.Contains(k.Schemes, strings.ToLower(scheme)) {
			return k, true
		}
	}
	return Kind{}, false
}

// ByID returns the kind recorded as id, or false.
func ByID(id string) (Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	for _, k := range kinds {
		if k.ID == id {
			return k, true
		}
	}
	return Kind{}, false
}

// Forms lists the registered kinds as a message does: "a postgres:// URL
// or a redis:// URL".
func Forms() string {
	var f []string
	for _, k := range Kinds() {
		f = append(f, fmt.Sprintf("a %s:// URL", k.ID))
	}
	switch len(f) {
	case 0:
		return ""
	case 1:
		return f[0]
	}
	return strings.Join(f[:len(f)-1], ", ") + " or " + f[len(f)-1]
}
