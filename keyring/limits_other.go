//go:build !darwin && !windows

package keyring

// tooLarge: the Secret Service has no fixed limit (go-keyring: performance
// suffers above 100 KiB); the read-back check still guards every write.
func tooLarge(_, _, _ string) (int, bool) { return 0, false }
