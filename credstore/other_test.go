//go:build !linux

package credstore

import "testing"

// noKeyring: only Linux tests can take the keyring away.
func noKeyring(t *testing.T) { t.Skip("needs a Linux session bus to remove") }
