//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

func lines(path string) []string {
	return strings.Fields(readFile(path))
}

// TestSuperviseRestart: latch exec --restart runs the child with a
// token, restarts it with each new one (the child sees every rotation,
// each token works), passes SIGTERM on and exits with the child's status.
func TestSuperviseRestart(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: 3 * time.Second})
	e.login()
	log := filepath.Join(t.TempDir(), "log")
	child := `echo "$LATCH_ACCESS_TOKEN" >> "$1"; trap 'exit 0' TERM; while :; do sleep 0.1; done`
	sup := start(t, e.command("exec", "--restart", "--restart-grace", "5s", "--", "sh", "-c", child, "sh", log))
	waitFor(t, 30*time.Second, "two rotations seen by the child", func() bool { return len(lines(log)) >= 3 })
	if code := sup.stop(t); code != 0 {
		t.Fatalf("SIGTERM to the supervisor: exit %d, want the child's 0; stderr:\n%s", code, sup.stderr())
	}
	got := lines(log)
	seen := map[string]bool{}
	for _, at := range got {
		if seen[at] {
			t.Errorf("the child was started twice with one token")
		}
		seen[at] = true
	}
	if n := e.counters().RefreshSuccesses; len(got) != n+1 {
		t.Errorf("the child saw %d tokens; the server rotated %d times: want every rotation seen (%d)", len(got), n, n+1)
	}
	if code := apiWith(t, e.srv, got[len(got)-1]); code != 200 {
		t.Errorf("the child's last token gets %d, want 200", code)
	}
	mustContain(t, "stderr", sup.stderr(), "restarting sh")
	if strings.Contains(sup.stderr(), got[0]) {
		t.Error("the supervisor's log holds a token")
	}
}

// TestSuperviseSignal: latch exec --signal HUP --token-file writes each
// new token and then signals the child, which re-reads the file named in
// LATCH_TOKEN_FILE; a child killed by a signal gives 128 + its number.
func TestSuperviseSignal(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: 3 * time.Second})
	e.login()
	d := t.TempDir()
	log, file := filepath.Join(d, "log"), filepath.Join(d, "token")
	child := `read() { cat "$LATCH_TOKEN_FILE" >> "$1"; }; trap 'read "$1"' HUP; read "$1"; while :; do sleep 0.1; done`
	sup := start(t, e.command("exec", "--signal", "HUP", "--token-file", file, "--", "sh", "-c", child, "sh", log))
	waitFor(t, 30*time.Second, "two rotations seen by the child", func() bool { return len(lines(log)) >= 3 })
	got := lines(log)
	if got[0] == got[1] || got[1] == got[2] {
		t.Errorf("the child read %q: want a new token after each signal", got)
	}
	if code := apiWith(t, e.srv, strings.TrimSpace(readFile(file))); code != 200 {
		t.Errorf("the token file's token gets %d, want 200", code)
	}
	if code := sup.stop(t); code != 128+int(syscall.SIGTERM) {
		t.Errorf("SIGTERM passed to a child that does not trap it: exit %d, want %d", code, 128+int(syscall.SIGTERM))
	}
}

// TestSuperviseEnds: the child's own exit status is latch's; a revoked
// grant stops the child, empties the token file and exits 4; mistakes in
// the flags are exit 2.
func TestSuperviseEnds(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: 3 * time.Second})
	e.login()
	if r := e.run("exec", "--restart", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("a child that exits 7: %v", r)
	}
	d := t.TempDir()
	file, pidFile := filepath.Join(d, "token"), filepath.Join(d, "pid")
	sup := start(t, e.command("exec", "--restart", "--token-file", file, "--", "sh", "-c", `echo $$ > "$1"; while :; do sleep 0.1; done`, "sh", pidFile))
	waitFor(t, 20*time.Second, "the child", func() bool { return readFile(pidFile) != "" && readFile(file) != "" })
	e.srv.RevokeFamily(e.stored().RefreshToken)
	if code := sup.wait(t, 30*time.Second); code != 4 {
		t.Fatalf("after the grant was revoked: exit %d, want 4; stderr:\n%s", code, sup.stderr())
	}
	mustContain(t, "stderr", sup.stderr(), "the grant is dead; stopping sh")
	if readFile(file) != "" {
		t.Error("the token file was not emptied")
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(readFile(pidFile))); err == nil {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("the child (pid %d) still runs after the supervisor exited", pid)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--signal", "HUP"}, "--signal needs --token-file"},
		{[]string{"--signal", "BOGUS", "--token-file", file}, "give one of HUP"},
		{[]string{"--restart", "--signal", "HUP", "--token-file", file}, "choose one"},
		{[]string{"--token-file", file}, "add --restart or --signal"},
	} {
		r := e.run(append(append([]string{"exec"}, tt.args...), "--", "true")...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("exec %q: %v; want exit 2 and %q", tt.args, r, tt.want)
		}
	}
	_ = os.Remove(file)
}
