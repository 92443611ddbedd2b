// Command latch keeps a command-line tool logged in to an OAuth 2.0 API.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchdev/latch/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
