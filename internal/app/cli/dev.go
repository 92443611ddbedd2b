package cli

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/app/settings"
)

// DevBinary is the separate program that holds the dev server and the
// demo. It is kept out of latch so that latch starts faster (the OAuth
// engine and GraphQL library cost about 2 ms of start-up; see docs/benchmarks.md).
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
	demo := pass("demo", "Run the demo against an embedded dev server", "demo")
	for _, c := range append(dev.Commands(), dev, demo) {
		c.SetUsageTemplate(noGlobalFlags(c.UsageTemplate()))
	}
	return []*cobra.Command{dev, demo}
}

// noGlobalFlags drops the "Global Flags" section from a usage template:
// latch's global flags do not apply to latch-dev.
func noGlobalFlags(tmpl string) string {
	i := strings.Index(tmpl, "{{if .HasAvailableInheritedFlags}}")
	if i < 0 {
		return tmpl
	}
	j := strings.Index(tmpl[i:], "{{end}}")
	if j < 0 {
		return tmpl
	}
	return tmpl[:i] + tmpl[i+j+len("{{end}}"):]
}

// devCommand is the `go run` line that runs latch-dev with args.
func devCommand(args []string) string {
	words := []string{"go", "run", "./cmd/latch-dev"}
	for _, a := range args {
		words = append(words, shellArg(a))
	}
	return strings.Join(words, " ")
}

// execDev replaces this process with latch-dev, so that signals such as
// Ctrl-C reach the dev server directly.
func (a *App) execDev(args []string) error {
	path, err := settings.Program(DevBinary)
	if err != nil {
		return usageError(errors.New("the dev server and demo are in a separate program, " + DevBinary +
			", which was not found beside latch or on PATH; in a clone of latch, install both with " +
			"`go install ./cmd/...` (and put $(go env GOPATH)/bin on PATH), or run `" + devCommand(args) + "`"))
	}
	return execProcess(path, append([]string{DevBinary}, args...))
}
