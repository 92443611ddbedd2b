// Command proxy measures `latch proxy` side by side with a direct
// request: the median latency of GET /v2/user against the dev server in
// its own process, direct with a bearer token, through a plain reverse
// proxy (the peer) and through latch proxy (which adds latch's token),
// alternating in one run over kept-alive connections, and the latency
// each proxy adds as a multiple of the direct request's; then the
// proxy's peak RSS while a body streams through it to a discarding API.
//
//	go run ./bench/proxy [-n 2000] [-size 1024]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 2000, "requests per side")
	sizeMiB := flag.Int64("size", 1024, "upload size in MiB")
	plain := flag.String("plain", "", "run as the peer: a plain reverse proxy to this URL that adds $BENCH_TOKEN")
	flag.Parse()
	if *plain != "" {
		plainProxy(*plain)
		return
	}
	if err := run(*n, *sizeMiB<<20); err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

func run(n int, size int64) error {
	tmp, err := os.MkdirTemp("", "latch-proxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	latchBin, devBin := filepath.Join(tmp, "latch"), filepath.Join(tmp, "latch-dev")
	for bin, pkg := range map[string]string{latchBin: "./cmd/latch", devBin: "./cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	// The API runs in its own process, as every real API does: the
	// direct path crosses one process boundary, a proxy adds another.
	api := exec.Command(devBin, "server", "--auto-approve", "--port", "0")
	apiOut, _ := api.StdoutPipe()
	if err := api.Start(); err != nil {
		return err
	}
	defer func() { api.Process.Signal(os.Interrupt); api.Wait() }()
	apiLine, err := bufio.NewReader(apiOut).ReadString('\n')
	if err != nil {
		return fmt.Errorf("latch-dev server printed no URL: %v", err)
	}
	apiURL := strings.TrimSpace(apiLine)
	var received int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	env := append(os.Environ(), "LATCH_HOST="+apiURL, "LATCH_CONFIG_DIR="+tmp,
		"LATCH_CREDENTIAL_STORE=file", "BROWSER="+devBin+" browse", "LATCH_DEBUG=", "LATCH_TOKEN=")
	login := exec.Command(latchBin, "auth", "login")
	login.Env = env
	if out, err := login.CombinedOutput(); err != nil {
		return fmt.Errorf("latch auth login: %v\n%s", err, out)
	}
	tokOut := exec.Command(latchBin, "auth", "token")
	tokOut.Env = env
	tb, err := tokOut.Output()
	if err != nil {
		return fmt.Errorf("latch auth token: %v", err)
	}
	token := strings.TrimSpace(string(tb))

	start := func(args ...string) (*exec.Cmd, string, string, error) {
		secretFile := filepath.Join(tmp, fmt.Sprintf("secret-%d", time.Now().UnixNano()))
		cmd := exec.Command(latchBin, append([]string{"proxy", "--secret-file", secretFile}, args...)...)
		cmd.Env = env
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return nil, "", "", err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			return nil, "", "", fmt.Errorf("proxy printed no URL: %v", err)
		}
		s, err := os.ReadFile(secretFile)
		return cmd, strings.TrimSpace(line), strings.TrimSpace(string(s)), err
	}
	proxy, base, secret, err := start()
	if err != nil {
		return err
	}
	defer func() { proxy.Process.Signal(os.Interrupt); proxy.Wait() }()

	// The peer: the sidecar people run today, a plain reverse proxy in
	// its own process that adds a fixed token and never refreshes.
	peer := exec.Command(os.Args[0], "-plain", apiURL)
	peer.Env = append(os.Environ(), "BENCH_TOKEN="+token)
	pout, _ := peer.StdoutPipe()
	if err := peer.Start(); err != nil {
		return err
	}
	defer func() { peer.Process.Kill(); peer.Wait() }()
	pline, err := bufio.NewReader(pout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("peer proxy: %v", err)
	}
	pbase := strings.TrimSpace(pline)

	c := &http.Client{}
	do := func(url, bearer string) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		t := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return time.Since(t), nil
	}
	paths := []struct{ name, url, bearer string }{
		{"direct (bearer token)", apiURL + "/v2/user", token},
		{"plain reverse proxy adding a fixed token (peer)", pbase + "/v2/user", "unused"},
		{"`latch proxy`", base + "/v2/user", secret},
	}
	for range 50 { // warm every path's connections
		for _, p := range paths {
			if _, err := do(p.url, p.bearer); err != nil {
				return err
			}
		}
	}
	times := make([][]time.Duration, len(paths))
	for i := range n {
		for j := range paths {
			p := paths[(i+j)%len(paths)] // rotate who goes first
			d, err := do(p.url, p.bearer)
			if err != nil {
				return err
			}
			k := (i + j) % len(paths)
			times[k] = append(times[k], d)
		}
	}
	fmt.Printf("Latency of GET /v2/user on the dev server, %d requests each, interleaved, kept-alive connections:\n\n", n)
	fmt.Printf("| path | median | p90 | median / direct | added / direct |\n|---|---|---|---|---|\n")
	var direct time.Duration
	for k, p := range paths {
		ts := times[k]
		slices.Sort(ts)
		m := ts[len(ts)/2]
		if k == 0 {
			direct = m
		}
		fmt.Printf("| %s | %s | %s | %.2f× | %.2f× |\n", p.name, m.Round(time.Microsecond), ts[len(ts)*9/10].Round(time.Microsecond),
			float64(m)/float64(direct), float64(m-direct)/float64(direct))
	}
	fmt.Println()

	// The upload: a second proxy whose API is a discarding sink.
	up, ubase, usecret, err := start("--api-url", sink.URL)
	if err != nil {
		return err
	}
	defer func() { up.Process.Signal(os.Interrupt); up.Wait() }()
	req, _ := http.NewRequest(http.MethodPut, ubase+"/upload", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+usecret)
	t := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	took := time.Since(t)
	if received != size {
		return fmt.Errorf("upload: %d of %d bytes arrived", received, size)
	}
	rss, err := peakRSS(up.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("Upload of %d MiB through `latch proxy`: %s, proxy peak RSS %d MiB\n", size>>20, took.Round(100*time.Millisecond), rss>>20)
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for %d", pid)
}

// plainProxy is the peer: httputil.ReverseProxy with a fixed token.
func plainProxy(target string) {
	u, err := url.Parse(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok := os.Getenv("BENCH_TOKEN")
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Header.Set("Authorization", "Bearer "+tok)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	_ = http.Serve(ln, rp)
}
