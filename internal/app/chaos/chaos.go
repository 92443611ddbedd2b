// Package chaos runs latch processes in a loop against the dev server
// while killing them (SIGKILL, SIGINT, SIGTERM, lock holders included) and
// injecting token-endpoint faults, and counts what a user would see:
// sessions lost, torn credential files, hung processes, tokens in output.
// The e2e test runs it for about a minute; `go run ./bench/chaos` longer.
package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/oauthtest"
)

// Options configure a run. Latch is the latch binary; Env is added to
// each process's environment and must name a BROWSER that completes a
// login against the dev server.
type Options struct {
	Latch    string
	Env      []string
	Workers  int           // concurrent processes; default 16
	Duration time.Duration // default 60s
	Grace    time.Duration // the dev server's rotation grace period; 0 is strict
	// HangAfter is how long a process may run before it counts as hung
	// and is killed; default 40s (above the lock wait of 30s).
	HangAfter time.Duration
	// Store, when set, is a fleet store the processes share (Env names it
	// in LATCH_CREDENTIAL_STORE); the harness reads it to follow the
	// login. Nil: a file store in the run's config directory.
	Store interface {
		latch.Store
		latch.Lister
	}
	// Disrupt, when set, is called every 1–3 s to break the store's
	// connections (kill backends, restart the server or the pooler); it
	// returns what it did, counted in Report.Disruptions.
	Disrupt func() string
	// Agent, when set, also runs `latch agent` with a token file, killed
	// (SIGKILL, or SIGTERM) after 0.3–3 s and started again, over and over.
	Agent bool
}

// Report is what a run saw.
type Report struct {
	Runs         int
	Exits        map[int]int    // exit code (-1: killed by a signal) -> count
	Signals      map[string]int // signals sent
	Faults       map[string]int // faults set on the token endpoint
	Disruptions  map[string]int // what Options.Disrupt did to the store
	SessionsLost int            // logins that had to be made again (a command found the login dead, exit 4)
	// FamiliesRevoked is the server's count of token families it revoked
	// (only reuse revokes one here: nothing logs out).
	FamiliesRevoked int
	// LossMessages are the messages of the commands that led to a new login.
	LossMessages []string
	AnswersLost  int // refreshes the server rotated whose answer never arrived, as counted
	// KilledHard is how many SIGKILLs landed; any of them may have been
	// between a grant and its save, which loses the answer too.
	KilledHard    int
	ReuseDetected int // the server's count
	GraceReuses   int
	Refreshes     int
	Torn          int // credential files that did not load
	Hung          int
	Leaks         int      // outputs that showed a token
	Unexpected    []string // exits that should not happen (1, 2, …), first few
	// Temporary are the distinct messages of exit 5 (a temporary
	// failure), first few: what the fleet waited on.
	Temporary      []string
	LoginFailures  int
	AgentRuns      int // latch agent processes started (Options.Agent)
	AgentKills     int // of them, ended by SIGKILL
	Elapsed        time.Duration
	TokensObserved int
}

// Explained reports whether every lost session is accounted for: at a
// strict server, by a lost answer (dropped after rotation, or a process
// killed mid-refresh); with a grace period, there must be none.
// A new login that no revoked family accounts for would be a command that
// said "log in again" for a session that was alive.
func (r *Report) Explained(grace bool) bool {
	if grace {
		return r.SessionsLost == 0 && r.ReuseDetected == 0
	}
	return r.SessionsLost <= r.FamiliesRevoked && r.ReuseDetected <= r.AnswersLost+r.KilledHard
}

// Run runs the chaos loop until opts.Duration has passed or ctx ends.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Duration <= 0 {
		opts.Duration = 60 * time.Second
	}
	if opts.HangAfter <= 0 {
		opts.HangAfter = 40 * time.Second
	}
	srv := oauthtest.NewServer(oauthtest.Options{AccessTTL: time.Second, AutoApprove: true, RotationGrace: opts.Grace})
	defer srv.Close()
	dir, err := os.MkdirTemp("", "latch-chaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c := &runner{opts: opts, srv: srv, dir: filepath.Join(dir, "config"),
		rep:    &Report{Exits: map[int]int{}, Signals: map[string]int{}, Faults: map[string]int{}, Disruptions: map[string]int{}},
		tokens: map[string]bool{}}
	c.store = opts.Store
	if c.store == nil {
		c.store = filestore.New(c.dir)
	}
	c.env = append(append(os.Environ(), "HOME="+dir, "LATCH_CONFIG_DIR="+c.dir, "LATCH_CREDENTIAL_STORE=file",
		"LATCH_HOST="+srv.URL, "NO_COLOR=1", "LATCH_DEBUG=", "LATCH_TOKEN=", "LATCH_TOKEN_TIMEOUT=2s"), opts.Env...)
	if err := c.login(); err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() { c.worker(ctx) })
	}
	wg.Go(func() { c.faults(ctx) })
	if opts.Disrupt != nil {
		wg.Go(func() { c.disrupt(ctx) })
	}
	if opts.Agent {
		wg.Go(func() { c.agent(ctx, filepath.Join(dir, "agent-token")) })
	}
	wg.Wait()
	srv.SetFaults(oauthtest.Faults{})
	c.rep.Elapsed = time.Since(start)
	cnt := srv.Counters()
	c.rep.AnswersLost = cnt.AnswersLost
	c.rep.ReuseDetected = cnt.ReuseDetections
	c.rep.FamiliesRevoked = cnt.FamiliesRevoked
	c.rep.GraceReuses = cnt.GraceReuses
	c.rep.Refreshes = cnt.RefreshSuccesses
	c.checkLeaks()
	return c.rep, nil
}

type runner struct {
	opts  Options
	srv   *oauthtest.Server
	dir   string
	env   []string
	store interface {
		latch.Store
		latch.Lister
	}

	mu      sync.Mutex
	rep     *Report
	tokens  map[string]bool // every token seen in the store
	outputs []string
	loginMu sync.Mutex
}

// relogin logs in again after a command found the login dead, unless
// another worker already did (the stored lineage moved on). Each counts
// as one lost session.
func (c *runner) relogin(lineage, why string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.lineage() != lineage {
		return nil
	}
	c.mu.Lock()
	c.rep.SessionsLost++
	if len(c.rep.LossMessages) < 20 {
		c.rep.LossMessages = append(c.rep.LossMessages, strings.TrimSpace(why))
	}
	c.mu.Unlock()
	// The injected faults hit the code exchange too: try until it works.
	var err error
	for range 20 {
		if err = c.loginLocked(); err == nil {
			return nil
		}
	}
	return err
}

// lineage is the stored credential's lineage, "" if none.
func (c *runner) lineage() string {
	st := c.store
	keys, _ := st.List(context.Background())
	for _, k := range keys {
		if t, err := st.Load(context.Background(), k); err == nil {
			return t.Lineage
		}
	}
	return ""
}

func (c *runner) login() error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked()
}

// loginLocked logs in afresh.
func (c *runner) loginLocked() error {
	cmd := exec.Command(c.opts.Latch, "auth", "login")
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	c.note(string(out))
	if err != nil {
		c.mu.Lock()
		c.rep.LoginFailures++
		c.mu.Unlock()
		return fmt.Errorf("latch auth login: %v\n%s", err, out)
	}
	c.observe()
	return nil
}

func (c *runner) worker(ctx context.Context) {
	for ctx.Err() == nil {
		lineage := c.lineage()
		code, out := c.one()
		c.note(out)
		c.observe()
		c.mu.Lock()
		c.rep.Runs++
		c.rep.Exits[code]++
		switch code {
		case 0, -1, 130:
		case 5:
			m := strings.TrimSpace(out)
			if len(c.rep.Temporary) < 8 && !slices.Contains(c.rep.Temporary, m) {
				c.rep.Temporary = append(c.rep.Temporary, m)
			}
		case 4:
		default:
			if len(c.rep.Unexpected) < 10 {
				c.rep.Unexpected = append(c.rep.Unexpected, fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(out)))
			}
		}
		c.mu.Unlock()
		if code == 4 && ctx.Err() == nil {
			_ = c.relogin(lineage, out)
		}
	}
}

// one runs `latch api /v2/user`, maybe signals it after a random delay,
// and returns its exit code (-1 when a signal ended it) and output.
func (c *runner) one() (int, string) {
	cmd := exec.Command(c.opts.Latch, "api", "/v2/user")
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return -2, err.Error()
	}
	done := make(chan struct{})
	sigc := make(chan string, 1)
	go func() {
		sig := ""
		if rand.IntN(3) == 0 { // a third of the processes are signalled
			t := time.NewTimer(time.Duration(rand.IntN(400)) * time.Millisecond)
			select {
			case <-t.C:
				s := []syscall.Signal{syscall.SIGKILL, syscall.SIGINT, syscall.SIGTERM}[rand.IntN(3)]
				if cmd.Process.Signal(s) == nil {
					sig = s.String()
				}
			case <-done:
				t.Stop()
			}
		}
		sigc <- sig
	}()
	hang := time.AfterFunc(c.opts.HangAfter, func() {
		_ = cmd.Process.Kill()
		c.mu.Lock()
		c.rep.Hung++
		c.mu.Unlock()
	})
	err := cmd.Wait()
	hang.Stop()
	close(done)
	sig := <-sigc
	c.mu.Lock()
	if sig != "" {
		c.rep.Signals[sig]++
		if sig == syscall.SIGKILL.String() {
			c.rep.KilledHard++
		}
	}
	c.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, out.String()
		}
		return ee.ExitCode(), out.String()
	}
	return -2, err.Error()
}

// agent runs `latch agent --token-file path` and ends it after a random
// 0.3–3 s, SIGKILL two times in three, until ctx ends. A refresh it was
// making when killed is lost like any other process's.
func (c *runner) agent(ctx context.Context, path string) {
	for ctx.Err() == nil {
		lineage := c.lineage()
		cmd := exec.Command(c.opts.Latch, "agent", "--token-file", path)
		cmd.Env = c.env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return
		}
		sig := []syscall.Signal{syscall.SIGKILL, syscall.SIGKILL, syscall.SIGTERM}[rand.IntN(3)]
		t := time.AfterFunc(time.Duration(300+rand.IntN(2700))*time.Millisecond, func() { _ = cmd.Process.Signal(sig) })
		err := cmd.Wait()
		killed := !t.Stop()
		c.note(out.String())
		c.observe()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = -1
			}
		}
		c.mu.Lock()
		c.rep.AgentRuns++
		if killed && sig == syscall.SIGKILL && code == -1 {
			c.rep.AgentKills++
			c.rep.KilledHard++
		}
		if code != 0 && code != -1 && code != 4 && len(c.rep.Unexpected) < 10 {
			c.rep.Unexpected = append(c.rep.Unexpected, fmt.Sprintf("agent exit %d: %s", code, strings.TrimSpace(out.String())))
		}
		c.mu.Unlock()
		if code == 4 && ctx.Err() == nil {
			_ = c.relogin(lineage, out.String())
		}
	}
}

// faults sets a random token-endpoint fault every 100–400ms, or none.
func (c *runner) faults(ctx context.Context) {
	for {
		t := time.NewTimer(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var f oauthtest.Faults
		kind := []string{"none", "none", "503", "drop_before", "drop_after", "latency", "html"}[rand.IntN(7)]
		switch kind {
		case "503":
			f.Fail503 = 1
		case "drop_before":
			f.DropBefore = 1
		case "drop_after":
			f.DropAfter = 1
		case "latency":
			f.Latency = time.Duration(100+rand.IntN(1400)) * time.Millisecond
		case "html":
			f.HTMLError = 1
		}
		c.srv.SetFaults(f)
		c.mu.Lock()
		c.rep.Faults[kind]++
		c.mu.Unlock()
	}
}

// observe loads the credential file: a torn or unreadable one counts, and
// its tokens join those no output may show.
func (c *runner) observe() {
	st := c.store
	keys, err := st.List(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, latch.ErrStoreUnavailable) {
		return // a fleet store being disrupted: nothing torn
	}
	if err != nil {
		c.rep.Torn++
		return
	}
	for _, k := range keys {
		t, err := st.Load(context.Background(), k)
		if errors.Is(err, latch.ErrNotFound) || errors.Is(err, latch.ErrStoreUnavailable) {
			continue
		}
		if err != nil {
			c.rep.Torn++
			continue
		}
		for _, v := range []string{t.AccessToken, t.RefreshToken} {
			if v != "" {
				c.tokens[v] = true
			}
		}
	}
}

// disrupt calls Options.Disrupt every 1–3 s.
func (c *runner) disrupt(ctx context.Context) {
	for {
		t := time.NewTimer(time.Duration(1000+rand.IntN(2000)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		what := c.opts.Disrupt()
		c.mu.Lock()
		c.rep.Disruptions[what]++
		c.mu.Unlock()
	}
}

func (c *runner) note(out string) {
	c.mu.Lock()
	c.outputs = append(c.outputs, out)
	c.mu.Unlock()
}

func (c *runner) checkLeaks() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.TokensObserved = len(c.tokens)
	for _, out := range c.outputs {
		for tok := range c.tokens {
			if strings.Contains(out, tok) {
				c.rep.Leaks++
				break
			}
		}
	}
}

// Markdown renders r as a README table row set.
func (r *Report) Markdown(name string) string {
	var b strings.Builder
	codes := make([]int, 0, len(r.Exits))
	for k := range r.Exits {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	var ex []string
	for _, k := range codes {
		label := fmt.Sprint(k)
		if k == -1 {
			label = "signal"
		}
		ex = append(ex, fmt.Sprintf("%s:%d", label, r.Exits[k]))
	}
	fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %d | %d | %d | %d | %d | %d | %d |\n",
		name, r.Elapsed.Round(time.Second), r.Runs, r.Refreshes, strings.Join(ex, " "),
		r.AnswersLost, r.KilledHard, r.ReuseDetected, r.SessionsLost, r.Torn, r.Hung, r.Leaks)
	if r.AgentRuns > 0 {
		fmt.Fprintf(&b, "<!-- %s: latch agent started %d times, %d of them ended by SIGKILL (counted in the SIGKILLs) -->\n", name, r.AgentRuns, r.AgentKills)
	}
	if r.LoginFailures > 0 {
		fmt.Fprintf(&b, "<!-- %s: %d logins failed on an injected fault and were tried again -->\n", name, r.LoginFailures)
	}
	return b.String()
}
