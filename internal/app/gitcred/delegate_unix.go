//go:build unix

package gitcred

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// runLatch replaces this process with latch reading input on stdin (an
// unlinked temporary file, so no size can block). It returns only when
// that fails.
func runLatch(bin string, argv []string, input []byte, _, _ io.Writer) (int, error) {
	f, err := os.CreateTemp("", "git-credential-latch-")
	if err != nil {
		return 0, err
	}
	os.Remove(f.Name())
	if _, err := f.Write(input); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := unix.Dup2(int(f.Fd()), 0); err != nil {
		return 0, err
	}
	return 0, unix.Exec(bin, argv, os.Environ())
}
