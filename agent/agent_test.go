package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/agent"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/oauthtest"
)

// login logs in to srv and saves the set in a file store in a new
// directory; it returns a Source over that store.
func login(t *testing.T, srv *oauthtest.Server) *latch.Source {
	t.Helper()
	ctx := context.Background()
	md, err := discovery.Fetch(ctx, nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := discovery.Config(md, "agent-test", nil)
	tok, err := authcode.Login(ctx, cfg, authcode.Options{OpenURL: srv.Browser()})
	if err != nil {
		t.Fatal(err)
	}
	st := filestore.New(t.TempDir())
	if err := st.Save(ctx, cfg.Key(""), nil, tok); err != nil {
		t.Fatal(err)
	}
	return &latch.Source{Config: cfg, Store: st, Key: cfg.Key("")}
}

// sibling is another process's Source for the same credential.
func sibling(s *latch.Source) *latch.Source {
	return &latch.Source{Config: s.Config, Store: s.Store, Key: s.Key}
}

// run starts a and returns a function that stops it and returns Run's
// error.
func run(t *testing.T, a *agent.Agent) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("the agent did not stop")
			return nil
		}
	}
}

func logTo(t *testing.T) func(string, ...any) {
	return func(format string, args ...any) { t.Logf("agent: "+format, args...) }
}

// TestKeepAliveSurvivesIdleWindows: the server expires a refresh token
// unused for 2 s (and says so in refresh_token_expires_in). With the
// agent, the session outlives ten windows with no other use; without it
// (the control), the same session dies after one.
func TestKeepAliveSurvivesIdleWindows(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, RefreshIdle: idle})
		defer srv.Close()
		src := login(t, srv)
		time.Sleep(idle + 500*time.Millisecond)
		if _, err := src.Renew(context.Background()); !errors.Is(err, latch.ErrLoginRequired) && !latch.IsTerminal(err) {
			t.Fatalf("after an idle window with nobody calling: %v; want the grant refused (the control must die)", err)
		}
	})
	t.Run("agent", func(t *testing.T) {
		t.Parallel()
		srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, RefreshIdle: idle})
		defer srv.Close()
		src := login(t, srv)
		stop := run(t, &agent.Agent{Source: src, Logf: logTo(t)})
		time.Sleep(10 * idle)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := sibling(src).Renew(context.Background()); err != nil {
			t.Fatalf("after ten idle windows with the agent: %v; want the session alive", err)
		}
		c := srv.Counters()
		if c.ReuseDetections != 0 || c.InvalidGrants != 0 {
			t.Errorf("reuse %d, invalid_grant %d; want 0", c.ReuseDetections, c.InvalidGrants)
		}
		if c.RefreshSuccesses < 10 {
			t.Errorf("refreshes = %d over ten windows, want at least one per window", c.RefreshSuccesses)
		}
	})
}

// TestTwoAgentsOneRefresh: two agents (two processes' Sources over one
// store and its lock) make one refresh per expiry between them.
func TestTwoAgentsOneRefresh(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, AccessTTL: 2 * time.Second})
	defer srv.Close()
	src := login(t, srv)
	first := srv.Counters().RefreshSuccesses
	start := time.Now()
	stopA := run(t, &agent.Agent{Source: src, Logf: logTo(t)})
	stopB := run(t, &agent.Agent{Source: sibling(src), Logf: logTo(t)})
	time.Sleep(7 * time.Second)
	if err := errors.Join(stopA(), stopB()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	c := srv.Counters()
	n := c.RefreshSuccesses - first
	// A 2 s token is refreshed when a quarter of its life is left: every
	// 1.5 s, plus the one at the start.
	most := int(elapsed/(1500*time.Millisecond)) + 1
	if n < 3 || n > most {
		t.Errorf("refreshes = %d in %s, want one per expiry (3 to %d), not one per agent", n, elapsed.Round(time.Millisecond), most)
	}
	if c.ReuseDetections != 0 || c.InvalidGrants != 0 {
		t.Errorf("reuse %d, invalid_grant %d; want 0", c.ReuseDetections, c.InvalidGrants)
	}
	tok, err := src.Store.Load(context.Background(), src.Key)
	if err != nil || int(tok.Generation) != n {
		t.Errorf("store holds generation %d (%v); want %d, one per refresh", tok.Generation, err, n)
	}
}

// TestDeadGrantEmptiesSinks: after the server revokes the grant, the
// agent empties its file and socket, says why, and Run returns the
// login-required error.
func TestDeadGrantEmptiesSinks(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, AccessTTL: 2 * time.Second})
	defer srv.Close()
	src := login(t, srv)
	dir := t.TempDir()
	file := &agent.File{Path: filepath.Join(dir, "token")}
	sock, err := agent.ListenSocket(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var mu sync.Mutex
	var lines []string
	a := &agent.Agent{Source: src, Sinks: []agent.Sink{file, sock}, Logf: func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, strings.TrimSpace(sprintf(f, args...)))
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFile(t, file.Path)
	tok, _ := src.Store.Load(ctx, src.Key)
	srv.RevokeFamily(tok.RefreshToken)
	err = <-done
	if !errors.Is(err, latch.ErrLoginRequired) {
		t.Fatalf("Run = %v, want login required", err)
	}
	if b, err := os.ReadFile(file.Path); err != nil || len(b) != 0 {
		t.Errorf("token file holds %q (%v), want it empty", b, err)
	}
	code, body := get(t, sock, "/token")
	if code != 503 || !strings.Contains(body, "log in again") {
		t.Errorf("socket answers %d %q, want 503 saying to log in again", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(lines, "\n"), "the grant is dead") {
		t.Errorf("the log does not say the grant is dead:\n%s", strings.Join(lines, "\n"))
	}
}

// TestTransientFailureKeepsCredential: while the server answers 503 the
// agent backs off and keeps the set, then refreshes when it is back.
func TestTransientFailureKeepsCredential(t *testing.T) {
	t.Parallel()
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, AccessTTL: 4 * time.Second})
	defer srv.Close()
	src := login(t, srv)
	src.Retries = -1
	srv.SetFaults(oauthtest.Faults{Fail503: 3})
	var mu sync.Mutex
	var scheds []agent.Schedule
	a := &agent.Agent{Source: src, Logf: logTo(t), OnSchedule: func(s agent.Schedule) {
		mu.Lock()
		defer mu.Unlock()
		scheds = append(scheds, s)
	}}
	stop := run(t, a)
	// Wait for the agent to schedule after the refresh, not only for the
	// server to count it: stopping in between loses the last schedule.
	recovered := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return srv.Counters().RefreshSuccesses > 0 && len(scheds) > 0 && scheds[len(scheds)-1].Failures == 0
	}
	deadline := time.Now().Add(20 * time.Second)
	for !recovered() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := srv.Counters().RefreshSuccesses; n == 0 {
		t.Fatal("no refresh after the server came back")
	}
	mu.Lock()
	defer mu.Unlock()
	most := 0
	for _, s := range scheds {
		most = max(most, s.Failures)
	}
	if most != 3 || scheds[len(scheds)-1].Failures != 0 {
		t.Errorf("failures in a row peaked at %d and ended at %d; want 3, then 0", most, scheds[len(scheds)-1].Failures)
	}
	if _, err := sibling(src).Renew(context.Background()); err != nil {
		t.Errorf("the credential after the outage: %v", err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s was never written", path)
}
