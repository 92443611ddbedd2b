// Command latch-dev runs the latch dev OAuth server and the demo. Invoked
// under the name "latch" (a link), it is the latch CLI itself, which lets
// the demo start real latch processes from a single `go run`.
package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch/internal/app/cli"
	"github.com/latchdev/latch/internal/app/devcmd"
)

func main() {
	ctx, stop := cli.SignalContext()
	var code int
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == "latch" {
		code = cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	} else {
		code = devcmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}
