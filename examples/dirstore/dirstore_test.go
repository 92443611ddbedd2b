package dirstore_test

import (
	"context"
	"testing"

	"github.com/latchdev/latch"
	_ "github.com/latchdev/latch/examples/dirstore"
	"github.com/latchdev/latch/storetest"
	"github.com/latchdev/latch/storeurl"
)

var key = []byte("0123456789abcdef0123456789abcdef")

// open opens the store as a program does: by its URL, through the
// registry the import above added it to.
func open(t *testing.T, dir string) storeurl.Store {
	t.Helper()
	k, ok := storeurl.Lookup("dir://" + dir)
	if !ok {
		t.Fatal("dir:// is not registered")
	}
	st, err := k.Open(context.Background(), "dir://"+dir, storeurl.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestContract(t *testing.T) {
	storetest.Run(t, open(t, t.TempDir()), latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "acme"})
}

func TestWaiter(t *testing.T) {
	dir := t.TempDir()
	storetest.RunWaiter(t, open(t, dir), open(t, dir), latch.Key{Issuer: "https://as.example", ClientID: "cli"})
}
