package devcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchdev/latch/internal/app/cli"
)

// TestMain lets the test binary play latch-dev's other roles in the
// demo: linked as "latch" it is the CLI; called with "browse" it is the
// demo's $BROWSER.
func TestMain(m *testing.M) {
	switch {
	case filepath.Base(os.Args[0]) == "latch":
		os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	case len(os.Args) > 1 && os.Args[1] == "browse":
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDemo runs the whole demo: it exits 0 only if every promise held,
// and its summary says so.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real latch processes")
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"Logged in to http://127.0.0.1:",
		`"login":"dev"`,
		"* latch: token refreshed (generation ",
		"[redacted fp:",
		"200/200 succeeded",
		"16/16 processes succeeded; the server saw 1 refresh, 0 reuse",
		"the old refresh token, presented again: HTTP 400",
		"All promises held",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q\n%s", want, out.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"server", "--port", "70000"}, {"server", "--access-ttl", "0s"}, {"browse"}, {"nope"}} {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, &out, &errb); code != 2 && !(args[0] == "nope" && code == 1) {
			t.Errorf("latch-dev %v: exit %d, want 2; stderr %q", args, code, errb.String())
		}
		if !strings.HasPrefix(errb.String(), "latch-dev: ") {
			t.Errorf("latch-dev %v: stderr %q, want one latch-dev: line", args, errb.String())
		}
	}
}
