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
