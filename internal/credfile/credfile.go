// Package credfile holds the naming and directory rules shared by the
// file store and its lock files: a credential's files are named by a
// hash of its key, in a directory only its user may change.
package credfile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/latchdev/latch/credential"
)

// Hash returns a stable, file-name-safe name for k, so that no issuer
// or account text reaches the file system. Changing it would split the
// lock between versions of latch running at once.
func Hash(k credential.Key) string {
	b, _ := json.Marshal(k) // a struct of strings always marshals
	sum := sha256.Sum256(b)
	return "cred-" + hex.EncodeToString(sum[:12])
}

// EnsureDir creates dir with mode 0700 if it does not exist. The mode is
// set explicitly, so the umask cannot widen it. An existing directory is
// left as it is, but refused if it is a symbolic link, or another user
// owns it or may write to it (a lock directory under /tmp could be made
// by anyone).
func EnsureDir(dir string) error {
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("use directory %s: not a directory", dir)
		}
		return checkDir(dir, fi)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}
