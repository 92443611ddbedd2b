package filestore

import (
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storetest"
)

// TestWaiter: two Stores on one directory, as two processes.
func TestWaiter(t *testing.T) {
	dir := t.TempDir()
	storetest.RunWaiter(t, New(dir), New(dir), latch.Key{Issuer: "https://as.example", ClientID: "cli", Account: "wait"})
}
