package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestDevWithoutLatchDev: latch hands `dev` and `demo` to latch-dev; when
// it is nowhere to be found, the user is told how to install it (exit 2).
func TestDevWithoutLatchDev(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, args := range [][]string{{"dev", "server", "--port", "0"}, {"demo"}} {
		// the hint runs the same subcommand, with the same arguments
		run := "`go run ./cmd/latch-dev " + strings.Join(args[len(args)-len(args[1:]):], " ") + "`"
		if args[0] == "demo" {
			run = "`go run ./cmd/latch-dev demo`"
		}
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, strings.NewReader(""), &out, &errb, os.Getenv)
		if code != ExitUsage {
			t.Errorf("latch %v: exit %d, want %d", args, code, ExitUsage)
		}
		if want := "`go install ./cmd/...` (and put $(go env GOPATH)/bin on PATH)"; !strings.Contains(errb.String(), want) {
			t.Errorf("latch %v: stderr %q, want it to name %q", args, errb.String(), want)
		}
		if !strings.Contains(errb.String(), run) {
			t.Errorf("latch %v: stderr %q, want it to name %s", args, errb.String(), run)
		}
	}
}

// TestDevHelpHasNoGlobalFlags: latch's global flags do not apply to
// latch-dev, so `latch dev --help` does not list them.
func TestDevHelpHasNoGlobalFlags(t *testing.T) {
	for _, args := range [][]string{{"dev", "--help"}} {
		var out, errb bytes.Buffer
		Run(context.Background(), args, strings.NewReader(""), &out, &errb, os.Getenv)
		if strings.Contains(out.String(), "Global Flags") || strings.Contains(out.String(), "--credential-store") {
			t.Errorf("latch %v lists latch's global flags:\n%s", args, out.String())
		}
	}
}
