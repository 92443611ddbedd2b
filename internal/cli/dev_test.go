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
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, strings.NewReader(""), &out, &errb, os.Getenv)
		if code != ExitUsage {
			t.Errorf("latch %v: exit %d, want %d", args, code, ExitUsage)
		}
		if want := "`go install ./cmd/...` (and put $(go env GOPATH)/bin on PATH)"; !strings.Contains(errb.String(), want) {
			t.Errorf("latch %v: stderr %q, want it to name %q", args, errb.String(), want)
		}
	}
}
