// Package demo is `latch-dev demo`: latch's promises, shown against an
// embedded dev server with real latch processes, in under 30 seconds.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/storekit"
)

// Options configure the demo.
type Options struct {
	Stdout, Stderr io.Writer
	Procs          int // concurrent latch processes in the storm
	Requests       int // concurrent requests in one process
}

// accessTTL is short so that expiry happens during the demo.
const accessTTL = 8 * time.Second

type run struct {
	o       Options
	srv     *oauthtest.Server
	dir     string // LATCH_CONFIG_DIR
	bin     string // a "latch" link to this executable
	env     []string
	secrets []string // every token seen, to prove none is printed
	step    int
}

// Run runs the demo. It fails if any promise does not hold.
func Run(ctx context.Context, o Options) error {
	if o.Procs <= 0 {
		o.Procs = 16
	}
	if o.Requests <= 0 {
		o.Requests = 200
	}
	tmp, err := os.MkdirTemp("", "latch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program: %w", err)
	}
	r := &run{o: o, dir: filepath.Join(tmp, "config"), bin: filepath.Join(tmp, "bin", "latch")}
	if err := os.MkdirAll(filepath.Dir(r.bin), 0o700); err != nil {
		return err
	}
	if err := os.Symlink(self, r.bin); err != nil {
		return fmt.Errorf("link latch: %w", err)
	}
	r.srv = oauthtest.NewServer(oauthtest.Options{AccessTTL: accessTTL, AutoApprove: true})
	defer r.srv.Close()
	r.env = append(os.Environ(),
		"LATCH_HOST="+r.srv.URL,
		"LATCH_CONFIG_DIR="+r.dir,
		"LATCH_CREDENTIAL_STORE=file",
		"BROWSER="+self+" browse",
		"LATCH_DEBUG=", "LATCH_TOKEN=", "LATCH_ORG=", "LATCH_CLIENT_ID=", "NO_COLOR=1",
	)
	start := time.Now()
	fmt.Fprintf(o.Stdout, "latch demo: dev server %s (zitadel/oidc), access tokens live %s, refresh tokens rotate and reuse is detected\n", r.srv.URL, accessTTL)
	for _, f := range []func(context.Context) error{r.login, r.calls, r.expiry, r.goroutines, r.processes, r.tools, r.logout, r.summary} {
		if err := f(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Stdout, "\nAll promises held, in %.1fs.\n", time.Since(start).Seconds())
	return nil
}

func (r *run) section(title string) {
	r.step++
	line := fmt.Sprintf("── %d. %s ", r.step, title)
	fmt.Fprintf(r.o.Stdout, "\n%s%s\n", line, strings.Repeat("─", max(0, 78-len([]rune(line)))))
}

func (r *run) say(format string, args ...any) { fmt.Fprintf(r.o.Stdout, "   "+format+"\n", args...) }

// latch runs one latch command and returns its output.
func (r *run) latch(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// show prints a command and its output, indented, after checking that no
// token it has seen appears in it.
func (r *run) show(args []string, stdout, stderr string) error {
	r.say("$ latch %s", strings.Join(quote(args), " "))
	for _, s := range []string{stderr, stdout} {
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if l != "" {
				r.say("  %s", l)
			}
		}
	}
	return r.checkNoSecrets(stdout + stderr)
}

func quote(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}'$") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return q
}

func (r *run) must(ctx context.Context, args ...string) (string, error) {
	out, errs, code := r.latch(ctx, args...)
	if err := r.show(args, out, errs); err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("latch %s: exit %d", strings.Join(args, " "), code)
	}
	return out, nil
}

// stored loads the credential the CLI saved, and remembers its secrets.
func (r *run) stored(ctx context.Context) (*latch.Token, error) {
	st := filestore.New(r.dir)
	keys, err := st.List(ctx)
	if err != nil || len(keys) != 1 {
		return nil, fmt.Errorf("stored credentials: %v, %v", keys, err)
	}
	t, err := st.Load(ctx, keys[0])
	if err == nil {
		r.secrets = append(r.secrets, t.AccessToken, t.RefreshToken)
	}
	return t, err
}

func (r *run) checkNoSecrets(s string) error {
	for _, sec := range r.secrets {
		if sec != "" && strings.Contains(s, sec) {
			return errors.New("a token appeared in the output")
		}
	}
	return nil
}

func (r *run) login(ctx context.Context) error {
	r.section("Log in: authorization code + PKCE over a loopback redirect (RFC 8252), HTTP browser")
	if _, err := r.must(ctx, "auth", "login"); err != nil {
		return err
	}
	t, err := r.stored(ctx)
	if err != nil {
		return err
	}
	r.say("stored as one unit: access %s…, refresh %s…, generation %d", storekit.Fingerprint(t.AccessToken), storekit.Fingerprint(t.RefreshToken), t.Generation)
	return nil
}

func (r *run) calls(ctx context.Context) error {
	r.section("A REST call and a GraphQL call")
	if _, err := r.must(ctx, "api", "/v2/user"); err != nil {
		return err
	}
	_, err := r.must(ctx, "api", "graphql", "-f", "query={ viewer { login } items(first: 2) { totalCount } }")
	return err
}

func (r *run) expiry(ctx context.Context) error {
	r.section("The access token expires: refreshed early, and after a 401")
	t, err := r.stored(ctx)
	if err != nil {
		return err
	}
	wait := time.Until(t.Expiry) - accessTTL/8
	r.say("waiting %.1fs, until the access token is inside its early-refresh margin…", wait.Seconds())
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	before := r.srv.Counters()
	out, errs, code := r.latch(ctx, "--debug", "api", "/v2/user")
	if code != 0 {
		return fmt.Errorf("latch api after expiry: exit %d: %s", code, errs)
	}
	if _, err := r.stored(ctx); err != nil { // learn the new tokens before checking the log
		return err
	}
	if err := r.checkNoSecrets(out + errs); err != nil {
		return err
	}
	after := r.srv.Counters()
	r.say("$ latch --debug api /v2/user   # an excerpt: the token exchange, secrets redacted")
	for _, l := range debugExcerpt(errs) {
		r.say("  %s", l)
	}
	r.say("proactive: %d refresh, %d 401s from the API", after.RefreshSuccesses-before.RefreshSuccesses, after.Resource401-before.Resource401)
	if after.RefreshSuccesses-before.RefreshSuccesses != 1 || after.Resource401 != before.Resource401 {
		return errors.New("expected one early refresh and no 401")
	}

	r.srv.ExpireAccessTokens()
	r.say("the server now revokes every access token early (POST /_dev/expire)")
	before = r.srv.Counters()
	if _, err := r.must(ctx, "api", "-X", "POST", "/v2/echo", "-f", "note=replayed after 401", "--jq", ".body"); err != nil {
		return err
	}
	after = r.srv.Counters()
	r.say("backstop: %d 401, %d refresh, request body replayed byte for byte", after.Resource401-before.Resource401, after.RefreshSuccesses-before.RefreshSuccesses)
	_, err = r.stored(ctx)
	return err
}

// debugExcerpt keeps the token-endpoint exchange of a --debug log.
func debugExcerpt(log string) []string {
	var out []string
	keep := false
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.HasPrefix(l, "> POST") && strings.Contains(l, "token"):
			keep = true
		case strings.HasPrefix(l, "* latch: token"):
			out = append(out, l)
			keep = false
		}
		if keep && l != "" && !strings.HasPrefix(l, "< Date") && !strings.HasPrefix(l, "< Vary") && !strings.HasPrefix(l, "< Content-Length") && !strings.HasPrefix(l, "> Content-Length") {
			if len(l) > 150 {
				l = l[:150] + "…"
			}
			out = append(out, l)
		}
	}
	return out
}

func (r *run) goroutines(ctx context.Context) error {
	r.section(fmt.Sprintf("%d concurrent requests in one process, token expired: 1 refresh", r.o.Requests))
	md, err := discovery.Fetch(ctx, nil, r.srv.URL)
	if err != nil {
		return err
	}
	cfg := discovery.Config(md, "latch-cli", nil)
	t, err := r.stored(ctx)
	if err != nil {
		return err
	}
	src := &latch.Source{Config: cfg, Store: filestore.New(r.dir), Key: t.Key()}
	client := &http.Client{Transport: &latch.Transport{Source: src}}
	if _, err := src.Token(ctx); err != nil {
		return err
	}
	r.srv.ExpireAccessTokens()
	before := r.srv.Counters()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range r.o.Requests {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/v2/user", nil)
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	after := r.srv.Counters()
	r.say("latch.Transport over a shared latch.Source: %d/%d succeeded, %d got a 401 first, %d refresh",
		ok, r.o.Requests, after.Resource401-before.Resource401, after.RefreshSuccesses-before.RefreshSuccesses)
	if ok != r.o.Requests || after.RefreshSuccesses-before.RefreshSuccesses != 1 {
		return errors.New("expected every request to succeed after exactly one refresh")
	}
	_, err = r.stored(ctx)
	return err
}

type proc struct {
	start, end time.Duration
	kind       string
	code       int
}

func (r *run) processes(ctx context.Context) error {
	r.section(fmt.Sprintf("%d latch processes at once on an expired token", r.o.Procs))
	r.srv.ExpireAccessTokens()
	before := r.srv.Counters()
	procs := make([]proc, r.o.Procs)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			p := &procs[i]
			p.start = time.Since(t0)
			_, errs, code := r.latch(ctx, "--debug", "api", "/v2/user")
			p.end, p.code = time.Since(t0), code
			p.kind = "used the stored token"
			for _, l := range strings.Split(errs, "\n") {
				if k, ok := strings.CutPrefix(l, "* latch: token "); ok {
					p.kind = k
				}
			}
		})
	}
	wg.Wait()
	after := r.srv.Counters()
	r.timeline(procs)
	failed := 0
	for _, p := range procs {
		if p.code != 0 {
			failed++
		}
	}
	r.say("%d/%d processes succeeded; the server saw %d refresh, %d reuse, %d families revoked",
		len(procs)-failed, len(procs), after.RefreshSuccesses-before.RefreshSuccesses, after.ReuseDetections, after.FamiliesRevoked)
	if failed != 0 || after.RefreshSuccesses-before.RefreshSuccesses != 1 || after.ReuseDetections != 0 {
		return errors.New("expected every process to succeed after exactly one refresh, with no reuse")
	}
	_, err := r.stored(ctx)
	return err
}

// timeline draws each process as a bar from its start to its end, marked
// with how it got its token.
func (r *run) timeline(procs []proc) {
	order := make([]int, len(procs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return procs[order[a]].end < procs[order[b]].end })
	var span time.Duration
	for _, p := range procs {
		span = max(span, p.end)
	}
	const width = 40
	r.say("%-6s 0%s%s", "proc", strings.Repeat(" ", width-1), span.Round(time.Millisecond))
	for _, i := range order {
		p := procs[i]
		a := int(float64(width) * float64(p.start) / float64(span))
		b := max(a+1, int(float64(width)*float64(p.end)/float64(span)))
		mark := "·"
		switch {
		case strings.HasPrefix(p.kind, "refreshed"):
			mark = "R"
		case strings.HasPrefix(p.kind, "adopted"):
			mark = "A"
		}
		bar := strings.Repeat(" ", a) + strings.Repeat("━", b-a-1) + mark + strings.Repeat(" ", width-b)
		r.say("#%-5d|%s| %s", i+1, bar, p.kind)
	}
	r.say("R: redeemed the refresh token under the lock; A: found it rotated under the lock and adopted it;")
	r.say("·: started after the rotation and loaded the new token from the store")
}

func (r *run) logout(ctx context.Context) error {
	r.section("Log out: revoke at the server (RFC 7009), then delete locally")
	t, err := r.stored(ctx)
	if err != nil {
		return err
	}
	if _, err := r.must(ctx, "auth", "logout"); err != nil {
		return err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.RefreshToken}, "client_id": {"latch-cli"}}
	resp, err := http.PostForm(r.srv.URL+"/oauth/token", form)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	r.say("the old refresh token, presented again: HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_grant") {
		return errors.New("expected the revoked refresh token to be rejected")
	}
	_, errs, code := r.latch(ctx, "auth", "token")
	r.say("$ latch auth token")
	r.say("  %s (exit %d)", strings.TrimSpace(errs), code)
	if code != 4 {
		return errors.New("expected exit 4 after logout")
	}
	return nil
}

func (r *run) summary(context.Context) error {
	r.section("What the server saw")
	c := r.srv.Counters()
	rows := []struct {
		name string
		n    int
	}{
		{"authorization codes redeemed", c.CodeExchanges},
		{"refresh token calls", c.TokenCalls["refresh_token"]},
		{"refreshes (rotations)", c.RefreshSuccesses},
		{"refresh token reuse detected", c.ReuseDetections},
		{"token families revoked (logout)", c.FamiliesRevoked},
		{"invalid_grant (old token, on purpose)", c.InvalidGrants},
		{"revocations (logout)", c.Revocations},
		{"API answers 200", c.Resource200},
		{"API answers 401", c.Resource401},
	}
	r.say("%-38s %6s", "counter", "value")
	for _, row := range rows {
		r.say("%-38s %6d", row.name, row.n)
	}
	if c.ReuseDetections != 0 {
		return errors.New("the server detected refresh token reuse")
	}
	return nil
}
