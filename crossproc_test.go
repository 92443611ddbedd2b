package latch_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	if os.Getenv("LATCH_XPROC_CHILD") == "1" {
		os.Exit(crossProcChild())
	}
	os.Exit(m.Run())
}

// crossProcChild is one "process" of TestCrossProcessOneRefresh: it sends
// one request through a Transport over the shared file store and prints
// how it got its token.
func crossProcChild() int {
	as := os.Getenv("LATCH_XPROC_AS")
	cfg := &latch.Config{Issuer: as, ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: as + "/token"}}
	kind := "none"
	src := &latch.Source{Config: cfg, Store: filestore.New(os.Getenv("LATCH_XPROC_DIR")), Key: cfg.Key(""),
		OnRefresh: func(ev latch.RefreshEvent) { kind = string(ev.Kind) }}
	c := &http.Client{Transport: &latch.Transport{Source: src}}
	resp, err := c.Get(as + "/api/user")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fmt.Fprintln(os.Stderr, "status", resp.StatusCode)
		return 1
	}
	fmt.Print(kind)
	return 0
}

// TestCrossProcessOneRefresh: 16 processes share one file store holding an
// expired token. Exactly one redeems the refresh token; the others adopt
// its result; the rotating server sees no reuse and every process succeeds.
func TestCrossProcessOneRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 16 processes")
	}
	srv := newRotatingServer(t)
	var once sync.Once
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		once.Do(func() { time.Sleep(300 * time.Millisecond) }) // let the others pile up on the lock
		return false
	}
	dir := t.TempDir()
	tok := expired(srv.login())
	if err := filestore.New(dir).Save(context.Background(), tok.Key(), nil, tok); err != nil {
		t.Fatal(err)
	}
	const n = 16
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "LATCH_XPROC_CHILD=1", "LATCH_XPROC_AS="+srv.URL, "LATCH_XPROC_DIR="+dir)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, stderr.String())
			}
		})
	}
	wg.Wait()
	kinds := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
		kinds[outs[i]]++
	}
	if c := srv.calls.Load(); c != 1 {
		t.Errorf("token endpoint calls = %d, want 1", c)
	}
	if r := srv.reuses.Load(); r != 0 {
		t.Errorf("reuses = %d, want 0", r)
	}
	if kinds["refreshed"] != 1 {
		t.Errorf("outcomes %v, want exactly one refreshed", kinds)
	}
	t.Logf("outcomes: %v", kinds)
}
