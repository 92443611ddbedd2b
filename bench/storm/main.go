// Command storm measures a refresh storm: N processes start at once on an
// expired access token. It compares latch (single-flight, a kernel lock,
// re-read and adopt) with a naive peer that refreshes through
// golang.org/x/oauth2 and saves to the same kind of file without a lock,
// the design the Buildkite CLI shipped. Both run against the dev server,
// which rotates refresh tokens and revokes the family on reuse.
//
//	go run ./bench/storm -trials 10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
	"golang.org/x/oauth2"
)

func main() {
	trials := flag.Int("trials", 10, "trials for each N")
	child := flag.String("naive-child", "", "internal: run one naive client on this token file")
	flag.Parse()
	if *child != "" {
		os.Exit(naiveChild(*child))
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the server logs each reuse it rejects
	if err := run(*trials); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

type outcome struct {
	calls, ok, reuses int
	wall              time.Duration
	survived          bool
}

func run(trials int) error {
	tmp, err := os.MkdirTemp("", "latch-storm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	latchBin := filepath.Join(tmp, "latch")
	devBin := filepath.Join(tmp, "latch-dev")
	for bin, pkg := range map[string]string{latchBin: "./cmd/latch", devBin: "./cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	srv := oauthtest.NewServer(oauthtest.Options{AccessTTL: time.Hour, AutoApprove: true})
	defer srv.Close()
	self, _ := os.Executable()

	fmt.Printf("Refresh storm: N processes start at once on an expired access token; %d trials each.\n", trials)
	fmt.Printf("Dev server: rotating refresh tokens, reuse revokes the family (RFC 9700 §4.14.2).\n\n")
	fmt.Printf("| client | N | token calls per trial (median) | wall time (median) | processes ok | reuse detected | session survived |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	for _, n := range []int{1, 8, 32} {
		for _, client := range []string{"latch", "naive x/oauth2 + file, no lock"} {
			var outs []outcome
			for range trials {
				var o outcome
				var err error
				if client == "latch" {
					o, err = latchTrial(srv, latchBin, devBin, tmp, n)
				} else {
					o, err = naiveTrial(srv, self, tmp, n)
				}
				if err != nil {
					return err
				}
				outs = append(outs, o)
			}
			report(client, n, outs)
		}
	}
	return nil
}

func report(client string, n int, outs []outcome) {
	calls := make([]int, len(outs))
	walls := make([]time.Duration, len(outs))
	ok, survived, reuses := 0, 0, 0
	for i, o := range outs {
		calls[i], walls[i] = o.calls, o.wall
		ok += o.ok
		reuses += o.reuses
		if o.survived {
			survived++
		}
	}
	slices.Sort(calls)
	slices.Sort(walls)
	fmt.Printf("| %s | %d | %d | %s | %d/%d | %d | %d/%d |\n", client, n, calls[len(calls)/2],
		walls[len(walls)/2].Round(time.Millisecond), ok, n*len(outs), reuses, survived, len(outs))
}

// latchTrial logs in afresh, expires the access token at the server, and
// starts n `latch api` processes at once.
func latchTrial(srv *oauthtest.Server, latchBin, devBin, tmp string, n int) (outcome, error) {
	dir, err := os.MkdirTemp(tmp, "latch-")
	if err != nil {
		return outcome{}, err
	}
	env := append(os.Environ(), "LATCH_HOST="+srv.URL, "LATCH_CONFIG_DIR="+dir,
		"LATCH_CREDENTIAL_STORE=file", "BROWSER="+devBin+" browse", "LATCH_DEBUG=", "LATCH_TOKEN=")
	login := exec.Command(latchBin, "auth", "login")
	login.Env = env
	if out, err := login.CombinedOutput(); err != nil {
		return outcome{}, fmt.Errorf("latch auth login: %v\n%s", err, out)
	}
	srv.ExpireAccessTokens()
	before := srv.Counters()
	var o outcome
	o.wall = many(n, func() bool {
		cmd := exec.Command(latchBin, "api", "/v2/user")
		cmd.Env = env
		return cmd.Run() == nil
	}, &o.ok)
	after := srv.Counters()
	o.calls = after.TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]
	o.reuses = after.ReuseDetections - before.ReuseDetections
	check := exec.Command(latchBin, "api", "/v2/user")
	check.Env = env
	o.survived = check.Run() == nil
	return o, nil
}

// naiveTrial logs in afresh, writes the token with an expired access token
// to a file, and starts n naive clients at once.
func naiveTrial(srv *oauthtest.Server, self, tmp string, n int) (outcome, error) {
	ctx := context.Background()
	md, err := discovery.Fetch(ctx, nil, srv.URL)
	if err != nil {
		return outcome{}, err
	}
	cfg := discovery.Config(md, "naive-cli", []string{"offline_access"})
	tok, err := authcode.Login(ctx, cfg, authcode.Options{OpenURL: srv.Browser()})
	if err != nil {
		return outcome{}, err
	}
	f, err := os.CreateTemp(tmp, "naive-*.json")
	if err != nil {
		return outcome{}, err
	}
	f.Close()
	nf := naiveFile{TokenURL: cfg.Endpoint.TokenURL, API: srv.URL + "/v2/user",
		Token: oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}}
	if err := nf.save(f.Name()); err != nil {
		return outcome{}, err
	}
	srv.ExpireAccessTokens()
	before := srv.Counters()
	var o outcome
	o.wall = many(n, func() bool {
		return exec.Command(self, "-naive-child", f.Name()).Run() == nil
	}, &o.ok)
	after := srv.Counters()
	o.calls = after.TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]
	o.reuses = after.ReuseDetections - before.ReuseDetections
	o.survived = exec.Command(self, "-naive-child", f.Name()).Run() == nil
	return o, nil
}

// many runs f n times at once and returns the wall time; ok counts successes.
func many(n int, f func() bool, ok *int) time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			if f() {
				mu.Lock()
				*ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

type naiveFile struct {
	TokenURL string       `json:"token_url"`
	API      string       `json:"api"`
	Token    oauth2.Token `json:"token"`
}

func (nf *naiveFile) save(path string) error {
	b, err := json.Marshal(nf)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// naiveChild is the peer: it loads the token, lets x/oauth2 refresh it if
// expired (explicit auth style, so at least no double send), saves the
// result without any lock, and calls the API.
func naiveChild(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 1
	}
	var nf naiveFile
	if err := json.Unmarshal(b, &nf); err != nil {
		return 1
	}
	cfg := &oauth2.Config{ClientID: "naive-cli", Endpoint: oauth2.Endpoint{TokenURL: nf.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.TokenSource(context.Background(), &nf.Token).Token()
	if err != nil {
		return 1
	}
	if tok.AccessToken != nf.Token.AccessToken {
		nf.Token = *tok
		if err := nf.save(path); err != nil {
			return 1
		}
	}
	req, _ := http.NewRequest("GET", nf.API, nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 1
	}
	return 0
}
