package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// tools shows other programs borrowing the login: curl through latch
// proxy across an expiry, and git cloning through the credential helper
// from a local smart-HTTP server (skipped, saying so, without git).
func (r *run) tools(ctx context.Context) error {
	r.section("Other tools borrow the login: curl through latch proxy, git through the helper")
	if err := r.proxyStep(ctx); err != nil {
		return err
	}
	return r.gitStep(ctx)
}

func (r *run) proxyStep(ctx context.Context) error {
	secretFile := filepath.Join(filepath.Dir(r.dir), "proxy.secret")
	cmd := exec.CommandContext(ctx, r.bin, "proxy", "--secret-file", secretFile)
	cmd.Env = r.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("latch proxy printed no URL: %w", err)
	}
	base := strings.TrimSpace(line)
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		return err
	}
	r.say("$ latch proxy --secret-file proxy.secret &     # prints %s", base)
	get := func() (string, error) {
		if curl, err := exec.LookPath("curl"); err == nil {
			c := exec.CommandContext(ctx, curl, "-fsS", "-H", "Authorization: Bearer "+strings.TrimSpace(string(secret)), base+"/v2/user")
			b, err := c.Output()
			return string(b), err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/user", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return string(b), nil
	}
	client := "curl"
	if _, err := exec.LookPath("curl"); err != nil {
		client = "an HTTP client (curl is not installed)"
	}
	body, err := get()
	if err != nil {
		return fmt.Errorf("%s through the proxy: %w", client, err)
	}
	r.say("$ curl -H \"Authorization: Bearer $(cat proxy.secret)\" %s/v2/user", base)
	r.say("  %s", strings.TrimSpace(body))
	before := r.srv.Counters()
	r.srv.ExpireAccessTokens()
	body, err = get()
	if err != nil {
		return fmt.Errorf("%s through the proxy after the expiry: %w", client, err)
	}
	after := r.srv.Counters()
	refreshed := after.RefreshSuccesses - before.RefreshSuccesses
	r.say("the server expires every access token; the same %s call: %s", client, strings.TrimSpace(body))
	r.say("(the proxy got a 401, refreshed once (%d), replayed; %s saw only the 200)", refreshed, client)
	if refreshed != 1 {
		return errors.New("expected the proxy to refresh exactly once")
	}
	_, err = r.stored(ctx)
	return err
}

func (r *run) gitStep(ctx context.Context) error {
	git, err := exec.LookPath("git")
	if err != nil {
		r.say("git is not installed: skipping the git credential helper part")
		return nil
	}
	execPath, err := exec.CommandContext(ctx, git, "--exec-path").Output()
	if err != nil {
		return err
	}
	root := filepath.Join(filepath.Dir(r.dir), "git")
	repo, seed := filepath.Join(root, "demo.git"), filepath.Join(filepath.Dir(r.dir), "seed")
	gitEnv := append(slices.Clip(r.env), "GIT_CONFIG_GLOBAL="+filepath.Join(filepath.Dir(r.dir), "gitconfig"),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	runGit := func(dir string, args ...string) (string, error) {
		c := exec.CommandContext(ctx, git, args...)
		c.Dir, c.Env = dir, gitEnv
		b, err := c.CombinedOutput()
		if err != nil {
			return string(b), fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, b)
		}
		return string(b), nil
	}
	for _, args := range [][]string{
		{"init", "-q", "--bare", repo},
		{"init", "-q", "-b", "main", seed},
		{"-C", seed, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-q", "--allow-empty", "-m", "hello from the demo"},
		{"-C", seed, "push", "-q", repo, "main"},
		{"-C", repo, "symbolic-ref", "HEAD", "refs/heads/main"},
	} {
		if _, err := runGit(filepath.Dir(r.dir), args...); err != nil {
			return err
		}
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=dev"}}
	var checked atomic.Int32
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, pw, _ := req.BasicAuth()
		if pw != "" && r.apiAccepts(ctx, pw) {
			checked.Add(1)
			backend.ServeHTTP(w, req)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	}))
	defer gs.Close()
	r.say("a git server (git http-backend) at %s that accepts only tokens the dev server issued", gs.URL)
	c := exec.CommandContext(ctx, r.bin, "auth", "setup-git", "--file", filepath.Join(filepath.Dir(r.dir), "gitconfig"), gs.URL)
	c.Env = r.env
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("latch auth setup-git: %v: %s", err, b)
	}
	r.say("$ latch auth setup-git %s", gs.URL)
	// git asks its helper once and sends the answer with every request of
	// the clone: a token of 8 s (2 s left when latch hands it over) can
	// expire between them on a loaded machine. Real tokens live far longer.
	r.srv.SetAccessTTL(time.Minute)
	r.srv.ExpireAccessTokens()
	if _, stderr, code := r.latch(ctx, "api", "/v2/user"); code != 0 {
		return fmt.Errorf("latch api /v2/user: exit %d: %s", code, stderr)
	}
	r.say("(the server now issues 1-minute tokens: git sends the helper's one answer with each request of a clone)")
	work := filepath.Join(filepath.Dir(r.dir), "clone")
	t0 := time.Now()
	if _, err := runGit(filepath.Dir(r.dir), "clone", "-q", gs.URL+"/demo.git", work); err != nil {
		return err
	}
	msg, err := runGit(work, "log", "-1", "--format=%s")
	if err != nil {
		return err
	}
	r.say("$ git clone %s/demo.git   # %s, last commit: %q", gs.URL, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(msg))
	if checked.Load() == 0 {
		return errors.New("the git server never saw a token")
	}
	return nil
}

// apiAccepts reports whether the dev server's API accepts token.
func (r *run) apiAccepts(ctx context.Context, token string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/v2/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}
