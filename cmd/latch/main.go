// Command latch keeps a command-line tool logged in to an OAuth 2.0 API.
package main

import (
	"os"

	"github.com/latchdev/latch/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext()
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
