package keyring

import "encoding/base64"

// tooLarge reports whether value exceeds what `security -i` accepts: go-keyring
// base64-encodes it with a prefix, and service, user and password together
// must stay under about 3000 bytes (go-keyring #153 fails silently at 4096).
func tooLarge(service, user, value string) (int, bool) {
	const max = 2900
	n := len("go-keyring-base64:") + base64.StdEncoding.EncodedLen(len(value)) + len(service) + len(user) + 64
	return max, n > max
}
