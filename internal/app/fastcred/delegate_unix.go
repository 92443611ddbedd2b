//go:build unix

package fastcred

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// runLatch replaces this process with latch reading input on stdin (an
// unlinked temporary file, so no size can block; nil input leaves stdin
// as it is). It returns only when that fails.
func runLatch(bin string, argv []string, input []byte, _, _ io.Writer) (int, error) {
	if input != nil {
		f, err := os.CreateTemp("", "latch-helper-")
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
	}
	return 0, unix.Exec(bin, argv, os.Environ())
}
