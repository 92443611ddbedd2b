// Command upload measures peak memory of a streaming upload through an
// authorizing transport: latch's Transport, and a transport that buffers
// the whole body for replay the way the Buildkite CLI's does. Each runs
// in its own child process, so each peak is its own.
//
//	go run ./bench/upload -size 1024
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

func main() {
	sizeMiB := flag.Int64("size", 1024, "upload size in MiB")
	mode := flag.String("mode", "", "run one mode in this process (latch or buffer-whole)")
	flag.Parse()
	if *mode != "" {
		if err := child(*mode, *sizeMiB<<20); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("Streaming upload of %d MiB over loopback, peak RSS of the process (client and a discarding loopback server):\n\n", *sizeMiB)
	fmt.Printf("| transport | peak RSS | time |\n|---|---|---|\n")
	for _, m := range []string{"latch", "buffer-whole"} {
		out, err := exec.Command(os.Args[0], "-mode", m, "-size", fmt.Sprint(*sizeMiB)).Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", m, err)
			os.Exit(1)
		}
		fmt.Print(string(out))
	}
}

func child(mode string, size int64) error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	defer srv.Close()
	var rt http.RoundTripper
	label := ""
	switch mode {
	case "latch":
		// StaticToken never refreshes, so no replay buffer would be
		// needed; use a Refresher to exercise the buffering path.
		rt = &latch.Transport{Source: refresher{latch.StaticToken("tok")}, Base: http.DefaultTransport}
		label = "latch.Transport"
	case "buffer-whole":
		rt = bufferWhole{http.DefaultTransport}
		label = "buffer whole body (bk's strategy)"
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	start := time.Now()
	req, _ := http.NewRequest("PUT", srv.URL, io.NopCloser(io.LimitReader(zeros{}, size)))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != fmt.Sprint(size) {
		return fmt.Errorf("server received %s bytes, want %d", got, size)
	}
	fmt.Printf("| %s | %d MiB | %.1f s |\n", label, peakRSS()>>20, time.Since(start).Seconds())
	return nil
}

// refresher makes a static source look refreshable, so that the
// Transport takes the replay-buffer path.
type refresher struct{ latch.TokenSource }

func (r refresher) Refresh(ctx context.Context, _ *latch.Token) (*latch.Token, error) {
	return r.Token(ctx)
}

// bufferWhole reads the whole request body into memory so that it can be
// replayed after a 401, then sends a copy.
type bufferWhole struct{ base http.RoundTripper }

func (b bufferWhole) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	saved := bytes.Clone(body)
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(saved))
	r.ContentLength = int64(len(saved))
	r.Header.Set("Authorization", "Bearer tok")
	return b.base.RoundTrip(r)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// peakRSS returns VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return -1
}
