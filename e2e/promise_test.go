package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/oauthtest"
)

// The tests in this file are the regressions of the promise issue: each
// failed on the code before its fix.

// waitFor polls cond every 10ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRefresh starts `latch api` on an expired token whose refresh
// answer comes late, and returns once the grant has reached the server
// (which then rotates, whatever the client does).
func (e *env) startRefresh(t *testing.T, slow time.Duration) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	e.srv.ExpireAccessTokens()
	e.expireLocally()
	e.srv.SetFaults(oauthtest.Faults{SlowAnswer: slow})
	before := e.counters().RefreshSuccesses
	cmd := e.command("api", "/v2/user")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the refresh to reach the server", func() bool {
		return e.counters().RefreshSuccesses > before
	})
	return cmd, stderr
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestInterruptMidRefresh (item 1): Ctrl-C or SIGTERM after the grant was
// sent. The process waits for the answer and saves it, says so, and the
// next command works without the server ever seeing reuse.
func TestInterruptMidRefresh(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			e.login()
			cmd, stderr := e.startRefresh(t, 2*time.Second)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			mustContain(t, "stderr", stderr.String(), "finishing the token refresh so the login is not lost")
			e.srv.SetFaults(oauthtest.Faults{})
			if tok := e.stored(); tok.Generation != 1 {
				t.Errorf("stored generation after the interrupted command = %d, want 1 (the rotated set saved)", tok.Generation)
			}
			if r := e.run("api", "/v2/user"); r.code != 0 {
				t.Fatalf("next command: %v", r)
			}
			if c := e.counters(); c.ReuseDetections != 0 || c.FamiliesRevoked != 0 {
				t.Errorf("reuse detections %d, families revoked %d; want 0, 0", c.ReuseDetections, c.FamiliesRevoked)
			}
		})
	}
}

// TestSecondInterruptQuits: a second signal still ends the process at once.
func TestSecondInterruptQuits(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	e.login()
	cmd, stderr := e.startRefresh(t, 30*time.Second)
	_ = cmd.Process.Signal(syscall.SIGINT)
	waitFor(t, 5*time.Second, "the finishing notice", func() bool {
		return strings.Contains(stderr.String(), "finishing the token refresh")
	})
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second Ctrl-C took %s to end the process", d)
	}
}

// TestSplitConfigDirsShareTheKeyringLock (item 2): processes with
// different config directories share one keyring item, so they must share
// its lock. 16 processes over two config dirs: 1 refresh, 0 reuse.
func TestSplitConfigDirsShareTheKeyringLock(t *testing.T) {
	needKeyring(t)
	e := newEnv(t, oauthtest.Options{})
	e.environ = append(e.environ, "LATCH_CREDENTIAL_STORE=keyring")
	if r := e.run("auth", "login"); r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	t.Cleanup(func() { e.run("auth", "logout") })
	// A second config directory that knows the same host (as a second
	// checkout, or XDG_CONFIG_HOME set differently, would).
	dirA := filepath.Join(e.dir, "config")
	dirB := filepath.Join(e.dir, "config-b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dirA, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, config.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for trial := range 3 {
		e.srv.ExpireAccessTokens()
		before := e.counters()
		var wg sync.WaitGroup
		res := make([]result, 16)
		start := make(chan struct{})
		for i := range res {
			dir := dirA
			if i%2 == 1 {
				dir = dirB
			}
			wg.Go(func() {
				<-start
				cmd := e.command("api", "/v2/user")
				cmd.Env = append(cmd.Environ(), "LATCH_CONFIG_DIR="+dir)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				res[i] = result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
				if err != nil && cmd.ProcessState == nil {
					res[i].code = -1
				}
			})
		}
		close(start)
		wg.Wait()
		after := e.counters()
		for i, r := range res {
			if r.code != 0 {
				t.Errorf("trial %d process %d: %v", trial, i, r)
			}
		}
		if n := after.RefreshSuccesses - before.RefreshSuccesses; n != 1 {
			t.Errorf("trial %d: %d refreshes, want 1", trial, n)
		}
		if after.ReuseDetections != 0 {
			t.Fatalf("trial %d: reuse detected", trial)
		}
	}
}

// TestLogoutDuringRefresh (item 3): a logout while another process is in
// the middle of a refresh. The logout waits for the lock and deletes the
// rotated set; the credential never comes back. The server revokes only
// the token presented (RFC 7009 §2.1 allows it), so a set saved after the
// logout would still work.
func TestLogoutDuringRefresh(t *testing.T) {
	e := newEnv(t, oauthtest.Options{RevokeTokenOnly: true})
	e.login()
	cmd, _ := e.startRefresh(t, time.Second)
	r := e.run("auth", "logout")
	_ = cmd.Wait()
	if r.code != 0 {
		t.Fatalf("logout: %v", r)
	}
	if n := e.storedCount(); n != 0 {
		t.Fatalf("%d credentials on disk after logout; the refresher brought one back", n)
	}
}

// TestLoginDuringRefresh (item 3): a new login while an old session's
// refresh is in flight. The new login is what stays stored.
func TestLoginDuringRefresh(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	e.login()
	cmd, _ := e.startRefresh(t, time.Second)
	e.srv.SetFaults(oauthtest.Faults{})
	if r := e.run("auth", "login"); r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	_ = cmd.Wait()
	tok := e.stored()
	if tok.Generation != 0 {
		t.Fatalf("stored generation %d after the new login; want 0 (the old session's rotated set overwrote it)", tok.Generation)
	}
	if r := e.run("api", "/v2/user"); r.code != 0 {
		t.Fatalf("api with the new login: %v", r)
	}
}

// TestConcurrentOrgLogins (item 4): 8 logins at once, one org each. The
// config file keeps all 8; switch works for each; logout --all removes
// every credential, and finds one the config file does not name.
func TestConcurrentOrgLogins(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	const n = 8
	var wg sync.WaitGroup
	res := make([]result, n)
	for i := range n {
		wg.Go(func() { res[i] = e.run("--org", fmt.Sprintf("o%d", i), "auth", "login") })
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("login %d: %v", i, r)
		}
	}
	cf, err := config.Load(filepath.Join(e.dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	h := cf.Get(e.srv.URL)
	if h == nil || len(h.Orgs) != n {
		t.Fatalf("config orgs = %v, want %d", h, n)
	}
	for i := range n {
		if r := e.run("auth", "switch", fmt.Sprintf("o%d", i)); r.code != 0 {
			t.Errorf("switch o%d: %v", i, r)
		}
	}
	// A credential the config no longer names (as a lost write left it).
	if _, err := config.Update(context.Background(), filepath.Join(e.dir, "config"), func(f *config.File) error {
		f.Get(e.srv.URL).RemoveOrg("o3")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := e.run("auth", "logout", "--all"); r.code != 0 {
		t.Fatalf("logout --all: %v", r)
	}
	if c := e.storedCount(); c != 0 {
		t.Fatalf("%d credentials left after logout --all, want 0", c)
	}
	if c := e.counters(); c.FamiliesRevoked != n {
		t.Errorf("families revoked = %d, want %d", c.FamiliesRevoked, n)
	}
}

// storedCount is how many credential files the file store holds.
func (e *env) storedCount() int {
	e.t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.dir, "config", "cred-*.json"))
	return len(m)
}
