package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// bgCmd is a latch process running in the background.
type bgCmd struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	errb bytes.Buffer
	done chan struct{}
	code int
}

func (b *bgCmd) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errb.Write(p)
}

func (b *bgCmd) stderr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errb.String()
}

// start runs cmd in the background; the test's end kills it if it still
// runs.
func start(t *testing.T, cmd *exec.Cmd) *bgCmd {
	t.Helper()
	b := &bgCmd{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = b, b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		b.code = cmd.ProcessState.ExitCode()
		_ = err
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// wait waits for the process to exit and returns its code.
func (b *bgCmd) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-time.After(within):
		t.Fatalf("still running after %s; stderr:\n%s", within, b.stderr())
		return -1
	}
}

func (b *bgCmd) stop(t *testing.T) int {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	return b.wait(t, 30*time.Second)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func askSocket(path, p string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := c.Get("http://agent" + p)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// apiWith calls the dev server's API with a bare access token.
func apiWith(t *testing.T, srv *oauthtest.Server, at string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v2/user", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAgent: one agent keeps one login's token in a token file, a
// rendered template and a Unix socket; all three follow each rotation
// and the token works; `auth status` names the agent; a second agent is
// refused; SIGTERM stops it (exit 0); a revoked grant empties the sinks
// and ends it with exit 4.
func TestAgent(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: 3 * time.Second})
	e.login()
	d := t.TempDir()
	file, netrc, sock := filepath.Join(d, "token"), filepath.Join(d, "netrc"), filepath.Join(d, "agent.sock")
	tmpl := filepath.Join(d, "netrc.tmpl")
	os.WriteFile(tmpl, []byte("machine api login x password {{.AccessToken}}\n"), 0o600)
	ag := start(t, e.command("agent", "--token-file", file, "--template", tmpl+"="+netrc, "--socket", sock))
	waitFor(t, 20*time.Second, "the token file", func() bool { return readFile(file) != "" })

	first := strings.TrimSpace(readFile(file))
	if code := apiWith(t, e.srv, first); code != 200 {
		t.Fatalf("the token file's token gets %d from the API, want 200", code)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if strings.Contains(readFile(file)+readFile(netrc), e.stored().RefreshToken) {
		t.Fatal("a sink holds the refresh token")
	}

	second := e.run("agent", "--token-file", filepath.Join(d, "other"))
	if second.code != 2 || !strings.Contains(second.stderr, fmt.Sprintf("another latch agent (pid %d) already keeps", ag.cmd.Process.Pid)) {
		t.Errorf("a second agent: %v; want exit 2 naming the first one's pid", second)
	}
	if _, err := os.Stat(filepath.Join(d, "other")); err == nil {
		t.Error("the refused second agent wrote its token file")
	}
	st := e.run("auth", "status")
	mustContain(t, "auth status", st.stdout, fmt.Sprintf("agent: pid %d keeps it alive; last refresh", ag.cmd.Process.Pid))

	// A 3 s token is refreshed with a quarter of its life left: every
	// sink follows the rotation.
	waitFor(t, 20*time.Second, "a rotation", func() bool {
		now := strings.TrimSpace(readFile(file))
		return now != "" && now != first
	})
	waitFor(t, 5*time.Second, "all sinks on one token", func() bool {
		at := strings.TrimSpace(readFile(file))
		_, body, err := askSocket(sock, "/token")
		return err == nil && strings.TrimSpace(body) == at && readFile(netrc) == "machine api login x password "+at+"\n"
	})
	if code := apiWith(t, e.srv, strings.TrimSpace(readFile(file))); code != 200 {
		t.Errorf("the rotated token gets %d, want 200", code)
	}
	if code := ag.stop(t); code != 0 || !strings.Contains(ag.stderr(), "stopped") {
		t.Errorf("SIGTERM: exit %d, want 0 and \"stopped\"; stderr:\n%s", code, ag.stderr())
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is left after the agent stopped (%v)", err)
	}
	if c := e.counters(); c.ReuseDetections != 0 || c.InvalidGrants != 0 {
		t.Errorf("reuse %d, invalid_grant %d; want 0", c.ReuseDetections, c.InvalidGrants)
	}
	if strings.Contains(ag.stderr(), first) {
		t.Error("the agent's log holds an access token")
	}

	// Revoked: the sinks are emptied and the agent exits 4.
	ag = start(t, e.command("agent", "--token-file", file, "--socket", sock))
	waitFor(t, 20*time.Second, "the restarted agent's socket", func() bool {
		code, _, err := askSocket(sock, "/token")
		return err == nil && code == 200
	})
	e.srv.RevokeFamily(e.stored().RefreshToken)
	if code := ag.wait(t, 30*time.Second); code != 4 {
		t.Fatalf("after the grant was revoked: exit %d, want 4; stderr:\n%s", code, ag.stderr())
	}
	mustContain(t, "agent stderr", ag.stderr(), "the grant is dead")
	mustContain(t, "agent stderr", ag.stderr(), "auth login")
	if got := readFile(file); got != "" {
		t.Errorf("the token file holds %q after the grant died, want it empty", got)
	}
}

// TestAgentStorm: with an agent running, 16 processes and the agent meet
// an expired token at once: one token call between them, no reuse.
func TestAgentStorm(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	e.login()
	d := t.TempDir()
	for trial := range 5 {
		e.srv.ExpireAccessTokens()
		e.expireLocally()
		before := e.counters()
		ag := start(t, e.command("agent", "--token-file", filepath.Join(d, "token")))
		res := e.runMany(16, "api", "/v2/user")
		file := filepath.Join(d, "token")
		waitFor(t, 20*time.Second, "the agent's token", func() bool { return readFile(file) != "" })
		after := e.counters()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("trial %d, process %d: %v", trial, i, r)
			}
		}
		if n := after.TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]; n != 1 {
			t.Errorf("trial %d: %d refresh calls from 16 processes and the agent, want 1", trial, n)
		}
		if after.ReuseDetections != 0 {
			t.Fatalf("trial %d: reuse detected", trial)
		}
		if code := apiWith(t, e.srv, strings.TrimSpace(readFile(file))); code != 200 {
			t.Errorf("trial %d: the agent's token gets %d, want 200", trial, code)
		}
		if code := ag.stop(t); code != 0 {
			t.Fatalf("trial %d: agent exit %d; stderr:\n%s", trial, code, ag.stderr())
		}
		os.Remove(file)
	}
}

// TestAgentFileFlags: the CLI applies --keep-alive (a refresh while the
// access token is valid for an hour), --in-place (the file keeps its
// inode across the rotation) and --token-file-mode.
func TestAgentFileFlags(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	e.login()
	file := filepath.Join(t.TempDir(), "token")
	before := e.counters()
	ag := start(t, e.command("agent", "--token-file", file, "--in-place", "--token-file-mode", "0640", "--keep-alive", "2s"))
	waitFor(t, 20*time.Second, "the first token", func() bool { return readFile(file) != "" })
	first := readFile(file)
	fi1, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi1.Mode().Perm() != 0o640 {
		t.Errorf("--token-file-mode 0640: the file is %v", fi1.Mode().Perm())
	}
	waitFor(t, 20*time.Second, "a keep-alive refresh of an hour's token", func() bool {
		return readFile(file) != "" && readFile(file) != first
	})
	fi2, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi1, fi2) {
		t.Error("--in-place: the rotation replaced the file (a bind mount would keep the old token)")
	}
	if n := e.counters().TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]; n < 1 {
		t.Errorf("%d refresh calls with --keep-alive 2s, want at least 1", n)
	}
	if code := apiWith(t, e.srv, strings.TrimSpace(readFile(file))); code != 200 {
		t.Errorf("the kept-alive token gets %d, want 200", code)
	}
	if code := ag.stop(t); code != 0 {
		t.Errorf("SIGTERM: exit %d; stderr:\n%s", code, ag.stderr())
	}
}

// TestAgentStopDuringFirstRefresh: SIGTERM while the agent's first
// refresh is on the wire is a clean stop (exit 0, not "interrupted"), and
// the answer is still stored: the next command works with no reuse.
func TestAgentStopDuringFirstRefresh(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	e.login()
	e.expireLocally()
	e.srv.SetFaults(oauthtest.Faults{SlowAnswer: 2 * time.Second})
	before := e.counters()
	ag := start(t, e.command("agent", "--token-file", filepath.Join(t.TempDir(), "token")))
	waitFor(t, 20*time.Second, "the agent's refresh call", func() bool {
		return e.counters().TokenCalls["refresh_token"] > before.TokenCalls["refresh_token"]
	})
	if code := ag.stop(t); code != 0 || !strings.Contains(ag.stderr(), "stopped") {
		t.Errorf("SIGTERM during the first refresh: exit %d, want 0 and \"stopped\"; stderr:\n%s", code, ag.stderr())
	}
	e.srv.SetFaults(oauthtest.Faults{})
	if r := e.run("api", "/v2/user"); r.code != 0 {
		t.Errorf("after the agent stopped: %v", r)
	}
	if after := e.counters(); after.ReuseDetections != 0 || after.TokenCalls["refresh_token"]-before.TokenCalls["refresh_token"] != 1 {
		t.Errorf("refresh calls %d, reuse %d; want 1 and 0 (the agent's answer was stored)",
			after.TokenCalls["refresh_token"]-before.TokenCalls["refresh_token"], after.ReuseDetections)
	}
}

// TestAgentBadInput: each mistake is exit 2 with a message that names
// it, before anything is written, and the credential is kept.
func TestAgentBadInput(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	if r := e.run("agent", "--token-file", filepath.Join(t.TempDir(), "t")); r.code != 4 || !strings.Contains(r.stderr, "auth login") {
		t.Errorf("not logged in: %v; want exit 4 saying how to log in", r)
	}
	e.login()
	before := e.stored()
	d := t.TempDir()
	badTmpl := filepath.Join(d, "bad.tmpl")
	os.WriteFile(badTmpl, []byte("{{.AccessToken"), 0o600)
	noField := filepath.Join(d, "nofield.tmpl")
	os.WriteFile(noField, []byte("{{.Password}}"), 0o600)
	plain := filepath.Join(d, "plain")
	os.WriteFile(plain, []byte("keep"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", filepath.Join(d, "missing", "token")}, "missing: no such file or directory"},
		{[]string{"--template", badTmpl + "=" + filepath.Join(d, "out")}, "unclosed action"},
		{[]string{"--template", noField + "=" + filepath.Join(d, "out")}, "can't evaluate field Password"},
		{[]string{"--template", filepath.Join(d, "none.tmpl") + "=" + filepath.Join(d, "out")}, "none.tmpl: no such file"},
		{[]string{"--template", "just-one-path"}, "give SRC=DEST"},
		{[]string{"--socket", plain}, "not a socket; refusing to replace it"},
		{[]string{"--token-file", filepath.Join(d, "t"), "--token-file-mode", "0400"}, "the owner must read and write"},
		{[]string{"--token-file-owner", "no-such-user-here"}, "no-such-user-here"},
	} {
		r := e.run(append([]string{"agent"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("agent %q: %v; want exit 2 and %q", tt.args, r, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "out")); err == nil {
		t.Error("a refused template was rendered")
	}
	if readFile(plain) != "keep" {
		t.Error("the file given as --socket was changed")
	}
	if after := e.stored(); !after.Matches(before) {
		t.Error("a refused agent changed the credential")
	}
}

// TestAgentInstall: the unit `agent install` writes runs as written: its
// ExecStart and Environment start an agent that keeps the token file; no
// secret is written; a store URL with a password is refused.
func TestAgentInstall(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	e.login()
	xdg := t.TempDir()
	e.environ = append(e.environ, "XDG_CONFIG_HOME="+xdg)
	work := t.TempDir()
	cmd := e.command("agent", "install", "--token-file", "rel/token", "--keep-alive", "12h")
	cmd.Dir = work
	os.Mkdir(filepath.Join(work, "rel"), 0o700)
	r := runCmd(t, cmd)
	unitPath := filepath.Join(xdg, "systemd", "user", "latch-agent.service")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote "+unitPath) || !strings.Contains(r.stdout, "systemctl --user enable --now latch-agent") {
		t.Fatalf("install: %v", r)
	}
	unit := readFile(unitPath)
	for _, want := range []string{"Restart=on-failure", "RestartPreventExitStatus=2 4", "WantedBy=default.target", `"--keep-alive" "12h0m0s"`} {
		mustContain(t, "the unit", unit, want)
	}
	if strings.Contains(unit, e.stored().RefreshToken) || strings.Contains(unit, e.stored().AccessToken) {
		t.Fatal("the unit holds a token")
	}
	var argv, env []string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			argv = unquoteSystemd(t, v)
		}
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			env = append(env, unquoteSystemd(t, v)...)
		}
	}
	if len(argv) < 2 || !filepath.IsAbs(argv[0]) || argv[1] != "agent" {
		t.Fatalf("ExecStart %q: want an absolute latch and agent", argv)
	}
	token := filepath.Join(work, "rel", "token")
	if !strings.Contains(strings.Join(argv, " "), "--token-file "+token) {
		t.Errorf("ExecStart %q: want the token file made absolute (%s)", argv, token)
	}
	// Run it as systemd would: from / with only the unit's environment.
	svc := exec.Command(argv[0], argv[1:]...)
	svc.Dir, svc.Env = "/", append(env, "HOME="+e.dir)
	ag := start(t, svc)
	waitFor(t, 20*time.Second, "the service's token file", func() bool { return readFile(token) != "" })
	if code := ag.stop(t); code != 0 {
		t.Errorf("the service: exit %d; stderr:\n%s", code, ag.stderr())
	}

	if r := e.run("agent", "install", "--print", "--name", "x"); r.code != 0 || !strings.Contains(r.stdout, "ExecStart=") {
		t.Errorf("--print: %v", r)
	}
	if r := e.run("agent", "install", "--credential-store", "postgres://latch:hunter2@127.0.0.1/db"); r.code != 2 || strings.Contains(r.stdout+r.stderr, "hunter2") || !strings.Contains(r.stderr, "password") {
		t.Errorf("a store URL with a password: %v; want exit 2, the password never shown", r)
	}
}

// unquoteSystemd splits a unit's command line of double-quoted words, as
// agent install writes them.
func unquoteSystemd(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] != '"' {
			t.Fatalf("unquoted word in %q", s)
		}
		var w strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			w.WriteByte(s[i])
		}
		words = append(words, strings.NewReplacer("%%", "%", "$$", "$").Replace(w.String()))
		s = s[i+1:]
	}
	return words
}
