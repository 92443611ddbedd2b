package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/storekit"
)

// latchBin is the latch binary under test, built once by TestMain.
var latchBin string

func TestMain(m *testing.M) {
	// The test binary doubles as $BROWSER: a real HTTP client that
	// follows the authorize URL to the loopback callback.
	if os.Getenv("LATCH_E2E_BROWSER") == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := oauthtest.Browse(ctx, os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// zitadel logs each rejected request; the tests assert on counters.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "latch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	latchBin = filepath.Join(dir, "latch")
	// The small helpers beside latch, as go install puts them: setup-git
	// and setup-kubectl then use them.
	for _, name := range []string{"latch", "git-credential-latch", "docker-credential-latch", "kube-credential-latch"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/latchdev/latch/cmd/"+name)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build "+name+":", err)
			return 1
		}
	}
	return m.Run()
}

// env is one dev server and one latch configuration directory.
type env struct {
	t       testing.TB
	srv     *oauthtest.Server
	dir     string
	environ []string
}

func newEnv(t testing.TB, opts oauthtest.Options) *env {
	t.Helper()
	opts.AutoApprove = true
	srv := oauthtest.NewServer(opts)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	e := &env{t: t, srv: srv, dir: dir}
	e.environ = append(os.Environ(),
		"HOME="+dir,
		"LATCH_CONFIG_DIR="+filepath.Join(dir, "config"),
		"LATCH_CREDENTIAL_STORE=file",
		"LATCH_HOST="+srv.URL,
		"BROWSER="+os.Args[0],
		"LATCH_E2E_BROWSER=1",
		"NO_COLOR=1",
	)
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(latchBin, args...)
	cmd.Env = e.environ
	return cmd
}

// run runs latch to completion.
func (e *env) run(args ...string) result { return runCmd(e.t, e.command(args...)) }

// runCmd runs cmd to completion and returns its output and exit code;
// a program that cannot start fails the test.
func runCmd(t testing.TB, cmd *exec.Cmd) result {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return r
}

// runMany starts n copies of latch at once and waits for all of them.
func (e *env) runMany(n int, args ...string) []result {
	res := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res[i] = e.run(args...)
		})
	}
	close(start)
	wg.Wait()
	return res
}

func (e *env) login() {
	e.t.Helper()
	if r := e.run("auth", "login"); r.code != 0 {
		e.t.Fatalf("login: %v", r)
	}
}

// stored returns the one credential in the file store.
func (e *env) stored() *latch.Token {
	e.t.Helper()
	st := filestore.New(filepath.Join(e.dir, "config"))
	keys, err := st.List(context.Background())
	if err != nil || len(keys) != 1 {
		e.t.Fatalf("credentials in the store: %v, %v; want 1", keys, err)
	}
	tok, err := st.Load(context.Background(), keys[0])
	if err != nil {
		e.t.Fatalf("load credential: %v", err)
	}
	return tok
}

// expireLocally rewrites the stored credential so its access token has
// expired on the client's clock too: the proactive path.
func (e *env) expireLocally() {
	e.t.Helper()
	st := filestore.New(filepath.Join(e.dir, "config"))
	tok := e.stored()
	tok.Expiry = time.Now().Add(-time.Second)
	if err := storekit.Put(context.Background(), st, tok.Key(), tok); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) counters() oauthtest.Counters { return e.srv.Counters() }

func mustContain(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, s, sub)
	}
}
