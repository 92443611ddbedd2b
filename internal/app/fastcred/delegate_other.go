//go:build !unix

package fastcred

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
)

// runLatch runs latch with input on stdin (nil: this process's stdin)
// and returns its exit code.
func runLatch(bin string, argv []string, input []byte, stdout, stderr io.Writer) (int, error) {
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if input != nil {
		cmd.Stdin = bytes.NewReader(input)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode(), nil
	}
	return 0, err
}
