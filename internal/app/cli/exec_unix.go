//go:build unix

package cli

import (
	"fmt"
	"os"
	"syscall"
)

// execProcess replaces this process with path.
func execProcess(path string, argv []string) error {
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("run %s: %w", path, err)
	}
	return nil
}

// execve replaces this process with path, argv and env; it returns only
// when that fails.
func execve(path string, argv, env []string) error { return syscall.Exec(path, argv, env) }
