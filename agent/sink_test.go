package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/agent"
)

var sprintf = fmt.Sprintf

// TestMain doubles as a client of a socket, for the test that asks as
// another user: LATCH_AGENT_TEST_ASK=PATH prints the status and body.
func TestMain(m *testing.M) {
	if path := os.Getenv("LATCH_AGENT_TEST_ASK"); path != "" {
		code, body, err := ask(path, "/token")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("%d %s", code, body)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func ask(path, p string) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
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

func get(t *testing.T, s *agent.Socket, p string) (int, string) {
	t.Helper()
	code, body, err := ask(strings.TrimPrefix(s.String(), "socket "), p)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

func token(at string, life time.Duration) *latch.Token {
	return &latch.Token{AccessToken: at, RefreshToken: "rt-never-served", TokenType: "Bearer", Expiry: time.Now().Add(life)}
}

func TestSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.sock")
	s, err := agent.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if code, body := get(t, s, "/token"); code != 503 || !strings.Contains(body, "no token yet") {
		t.Errorf("before a token: %d %q", code, body)
	}
	_ = s.Deliver(token("at-1", time.Hour))
	if code, body := get(t, s, "/token"); code != 200 || body != "at-1\n" {
		t.Errorf("GET /token = %d %q, want 200 \"at-1\\n\"", code, body)
	}
	code, body := get(t, s, "/token.json")
	if code != 200 || !strings.Contains(body, `"access_token":"at-1"`) || !strings.Contains(body, `"expires_in":`) {
		t.Errorf("GET /token.json = %d %s", code, body)
	}
	if strings.Contains(body, "rt-never-served") {
		t.Errorf("the socket served the refresh token: %s", body)
	}
	_ = s.Deliver(token("at-2", -time.Second))
	if code, body := get(t, s, "/token"); code != 503 || !strings.Contains(body, "expired") {
		t.Errorf("with an expired token: %d %q, want 503", code, body)
	}
	if code, _ := get(t, s, "/other"); code != 404 {
		t.Errorf("GET /other = %d, want 404", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket file is left after Close: %v", err)
	}
}

func TestSocketPathTaken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	s, err := agent.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := agent.ListenSocket(path); err == nil || !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("second listener: %v, want a refusal naming the other process", err)
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("keep me"), 0o600)
	if _, err := agent.ListenSocket(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Errorf("the file was changed: %q", b)
	}
	if _, err := agent.ListenSocket(filepath.Join(dir, "missing", "s")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("in a missing directory: %v", err)
	}
	// A stale socket (its agent was killed) is replaced.
	stale := filepath.Join(dir, "stale")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s2, err := agent.ListenSocket(stale)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	s2.Close()
}

// TestFileReadersNeverSeeATornToken: while the sink rotates the token
// 1,000 times (tokens of different lengths), readers never see an empty
// file or a token that was never written. In place, a reader takes a
// shared lock, as the File doc says it must.
func TestFileReadersNeverSeeATornToken(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "atomic", true: "in-place"}[inPlace], func(t *testing.T) {
			f := &agent.File{Path: filepath.Join(t.TempDir(), "token"), InPlace: inPlace}
			written := sync.Map{}
			tok := func(i int) string { return "at-" + strconv.Itoa(i) + strings.Repeat("x", i%7*10) }
			written.Store(tok(0)+"\n", true)
			if err := f.Deliver(token(tok(0), time.Hour)); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var reads, bad int
			var firstBad string
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					var b []byte
					var err error
					if inPlace {
						l := flock.New(f.Path)
						if err = l.RLock(); err == nil {
							b, err = os.ReadFile(f.Path)
							l.Close()
						}
					} else {
						b, err = os.ReadFile(f.Path)
					}
					reads++
					if _, ok := written.Load(string(b)); err != nil || !ok {
						if bad++; firstBad == "" {
							firstBad = fmt.Sprintf("%q (%v)", b, err)
						}
					}
				}
			})
			for i := 1; i <= 1000; i++ {
				written.Store(tok(i)+"\n", true)
				if err := f.Deliver(token(tok(i), time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			close(done)
			wg.Wait()
			if bad > 0 {
				t.Errorf("%d of %d reads saw a torn or empty token, first %s", bad, reads, firstBad)
			}
			if fi, err := os.Stat(f.Path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
			}
			t.Logf("%d reads during 1,000 rotations", reads)
		})
	}
}

// TestInPlaceKeepsTheInode: a bind mount holds the file's inode, so the
// in-place mode must write into it, never replace it.
func TestInPlaceKeepsTheInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	os.WriteFile(path, nil, 0o644)
	before, _ := os.Stat(path)
	f := &agent.File{Path: path, InPlace: true}
	for _, at := range []string{"a-long-first-token", "short"} {
		if err := f.Deliver(token(at, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("the in-place sink replaced the file; a bind mount would not see the token")
	}
	if b, _ := os.ReadFile(path); string(b) != "short\n" {
		t.Errorf("file holds %q, want \"short\\n\" (truncated to the new token)", b)
	}
	if after.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", after.Mode().Perm())
	}
}

func TestTemplate(t *testing.T) {
	render, err := agent.ParseTemplate("netrc", "machine api.example.com login x password {{.AccessToken}}\n")
	if err != nil {
		t.Fatal(err)
	}
	f := &agent.File{Path: filepath.Join(t.TempDir(), "netrc"), Render: render}
	if err := f.Deliver(token("at-7", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path); string(b) != "machine api.example.com login x password at-7\n" {
		t.Errorf("rendered %q", b)
	}
	render, err = agent.ParseTemplate("json", `{"token":{{json .AccessToken}},"exp":{{.Expiry.Unix}},"h":{{json .Authorization}}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := render(token(`a"b`, time.Hour))
	if err != nil || !strings.HasPrefix(string(b), `{"token":"a\"b","exp":`) || !strings.Contains(string(b), `"h":"Bearer a\"b"`) {
		t.Errorf("json template: %s, %v", b, err)
	}
	for _, bad := range []string{"{{.AccessToken", "{{.NoSuchField}}", "{{index .AccessToken 99}}"} {
		if _, err := agent.ParseTemplate("bad", bad); err == nil {
			t.Errorf("template %q was accepted; it fails at rendering", bad)
		}
	}
}
