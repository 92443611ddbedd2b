package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// startProxy runs `latch proxy` and returns its base URL and secret.
func (e *env) startProxy(t *testing.T, args ...string) (cmd *exec.Cmd, base, secret string) {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "secret")
	cmd = e.command(append([]string{"proxy", "--secret-file", secretFile}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("proxy printed no URL: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(secretFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	return cmd, strings.TrimSpace(line), strings.TrimSpace(string(b))
}

func get(t *testing.T, c *http.Client, url, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A client that reads its key once keeps working across many token
// lifetimes, and 200 concurrent clients on an expired token cost one
// refresh.
func TestProxyLongRunningAndConcurrent(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Second})
	e.login()
	_, base, secret := e.startProxy(t)
	c := &http.Client{}
	e.srv.ResetCounters()
	deadline := time.Now().Add(4 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		if code, body := get(t, c, base+"/v2/user", secret); code != 200 {
			t.Fatalf("request %d through the proxy: %d %s", n, code, body)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.counters(); got.RefreshSuccesses < 3 || got.ReuseDetections != 0 {
		t.Fatalf("%d requests over 4 token lifetimes: %d refreshes, %d reuse", n, got.RefreshSuccesses, got.ReuseDetections)
	}

	// 200 at once on an expired token (wait out the 1 s lifetime).
	time.Sleep(1100 * time.Millisecond)
	e.srv.ResetCounters()
	var wg sync.WaitGroup
	var bad atomic.Int32
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			if code, _ := get(t, c, base+"/v2/user", secret); code != 200 {
				bad.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := e.counters(); bad.Load() != 0 || got.RefreshSuccesses != 1 || got.TokenCalls["refresh_token"] != 1 {
		t.Fatalf("200 concurrent clients: %d failed, %d refreshes, %d refresh calls; want 0, 1, 1",
			bad.Load(), got.RefreshSuccesses, got.TokenCalls["refresh_token"])
	}
}

// 1 GiB streams through the proxy to the API; the proxy's peak RSS stays
// far below the body's size.
func TestProxyStreamsUploads(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc for the proxy's peak RSS")
	}
	e := newEnv(t, oauthtest.Options{})
	var got atomic.Int64
	sink := httptest.NewServer(tokenChecker(e.srv, `Bearer realm="api"`, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		fmt.Fprintf(w, `{"bytes":%d}`, n)
	})))
	t.Cleanup(sink.Close)
	e.login()
	cmd, base, secret := e.startProxy(t, "--api-url", sink.URL)
	const size = 1 << 30
	req, _ := http.NewRequest(http.MethodPut, base+"/upload", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Load() != size {
		t.Fatalf("upload: HTTP %d, %d bytes arrived", resp.StatusCode, got.Load())
	}
	hwm := peakRSS(t, cmd.Process.Pid)
	t.Logf("proxy peak RSS after a 1 GiB upload: %d MiB", hwm>>20)
	if hwm > 64<<20 {
		t.Fatalf("proxy peak RSS %d MiB: it buffered the body", hwm>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// peakRSS is VmHWM of pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// On a Unix socket the proxy is reachable by this user only (mode 0600).
func TestProxyUnixSocket(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	e.login()
	sock := filepath.Join(t.TempDir(), "latch.sock")
	_, base, secret := e.startProxy(t, "--listen", "unix:"+sock)
	if base != "unix:"+sock {
		t.Fatalf("base %q", base)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if code, body := get(t, c, "http://latch/v2/user", secret); code != 200 || !strings.Contains(body, `"login":"dev"`) {
		t.Fatalf("through the socket: %d %s", code, body)
	}
}
