// Command latch keeps a command-line tool logged in to an OAuth 2.0 API.
package main

import (
	"os"
	"path/filepath"

	"github.com/latchdev/latch/internal/app/cli"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == cli.DockerHelperName {
		// Docker runs docker-credential-latch get|store|erase|list.
		args = append([]string{"credential", "docker"}, args...)
	}
	ctx, stop := cli.SignalContext()
	code := cli.Run(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
