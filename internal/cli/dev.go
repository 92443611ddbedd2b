package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/settings"
)

// DevBinary is the separate program that holds the dev server and the
// demo. It is kept out of latch so that latch starts faster (the OAuth
// engine and GraphQL library cost about 2 ms of start-up; see README).
const DevBinary = "latch-dev"

// newDevCmd hands `latch dev ...` and `latch demo` to latch-dev, found
// beside this executable or on PATH.
func (a *App) newDevCmd() []*cobra.Command {
	pass := func(use, short string, prefix ...string) *cobra.Command {
		return &cobra.Command{
			Use:                use,
			Short:              short,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.execDev(append(prefix, args...))
			},
		}
	}
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Tools for trying latch locally (runs " + DevBinary + ")",
		Args:  usageArgs(cobra.ArbitraryArgs),
		RunE:  groupRun,
	}
	dev.AddCommand(
		pass("server", "Run a local OAuth 2.0 server with a REST and GraphQL API", "server"),
		pass("browse URL", "Follow a login URL like a browser and approve it (dev server only)", "browse"),
	)
	return []*cobra.Command{dev, pass("demo", "Run the demo against an embedded dev server", "demo")}
}

// execDev replaces this process with latch-dev, so that signals such as
// Ctrl-C reach the dev server directly.
func (a *App) execDev(args []string) error {
	path, err := settings.Program(DevBinary)
	if err != nil {
		return usageError(errors.New("the dev server and demo are in a separate program, " + DevBinary +
			", which was not found beside latch or on PATH; in a clone of latch, install both with " +
			"`go install ./cmd/...` (and put $(go env GOPATH)/bin on PATH), or run `go run ./cmd/latch-dev`"))
	}
	return execProcess(path, append([]string{DevBinary}, args...))
}
