package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/redact"
)

// DefaultProxyDrain bounds how long `latch proxy` waits for requests in
// flight when it is asked to stop.
const DefaultProxyDrain = 10 * time.Second

// proxyOptions are the flags of `latch proxy`.
type proxyOptions struct {
	listen     string
	secretFile string
	drain      time.Duration
}

// newProxyCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newProxyCmd(runF func(*proxyOptions) error) *cobra.Command {
	o := &proxyOptions{}
	c := &cobra.Command{
		Use:   "proxy",
		Short: "Serve a local proxy to the API that adds a fresh token to every request",
		Long: `Serve a reverse proxy to the host's API on a loopback address (or a Unix
socket, mode 0600). Every request it forwards carries a fresh access token
through latch's transport: refreshed early, refreshed and replayed after a
401, bodies streamed without buffering. A tool that reads an API key once
keeps working for as long as the login lasts.

Only a client holding this run's secret is served: it sends it as its
bearer token (Authorization: Bearer SECRET) or as X-Api-Key. Without
--secret-file the secret is printed once on stderr; with it, it is written
to that new 0600 file (removed at exit). The first line on stdout is the
proxy's base URL.

The client's Authorization, Proxy-Authorization, X-Api-Key and hop-by-hop
headers are never forwarded; requests go only to the API URL (a request
naming another URL is refused), and redirects are passed back with the API
origin replaced by the proxy's, never followed with the token. Ctrl-C
finishes requests in flight (up to --drain) and any refresh already sent.`,
		Example: `  latch proxy --listen 127.0.0.1:8787 --secret-file ~/.cache/latch-proxy.secret &
  curl -H "Authorization: Bearer $(cat ~/.cache/latch-proxy.secret)" http://127.0.0.1:8787/v2/user
  OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=$(cat ~/.cache/latch-proxy.secret) some-sdk-tool`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return a.proxy(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback `ADDRESS` (host:port) or unix:PATH")
	f.StringVar(&o.secretFile, "secret-file", "", "write the client secret to this new `FILE` (mode 0600) instead of stderr")
	f.DurationVar(&o.drain, "drain", DefaultProxyDrain, "how long to wait for requests in flight at exit")
	return c
}

func (a *App) proxy(ctx context.Context, o *proxyOptions) error {
	client, err := a.HTTPClient(ctx)
	if err != nil {
		return err
	}
	// Check the login now (exit 4, as exec and the helpers do), not at
	// the first request a client makes.
	if _, err := a.freshToken(ctx); err != nil {
		return err
	}
	api, err := a.APIURL(ctx)
	if err != nil {
		return err
	}
	target, err := url.Parse(api)
	if err != nil {
		return usageError(fmt.Errorf("API URL: %w", err))
	}
	ln, base, err := listenProxy(o.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	if o.secretFile != "" {
		f, err := os.OpenFile(o.secretFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return usageError(fmt.Errorf("--secret-file: %w", err))
		}
		_, werr := f.WriteString(secret + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(o.secretFile)
			return fmt.Errorf("--secret-file: %w", werr)
		}
		defer os.Remove(o.secretFile)
	}

	h := &proxyHandler{secret: []byte(secret), target: target, base: base, transport: client.Transport, app: a}
	srv := &http.Server{Handler: h.handler(), ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintln(a.Stdout, base)
	if f, ok := a.Stdout.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	if o.secretFile != "" {
		fmt.Fprintf(a.Stderr, "latch proxy: %s -> %s; clients send the secret in %s as their bearer token. Ctrl-C stops.\n", base, api, o.secretFile)
	} else {
		fmt.Fprintf(a.Stderr, "latch proxy: %s -> %s; clients send this secret as their bearer token (shown once): %s\nCtrl-C stops.\n", base, api, secret)
	}

	select {
	case err := <-served:
		return fmt.Errorf("proxy: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(a.Stderr, "latch proxy: stopping; finishing requests in flight…")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// listenProxy listens on a loopback TCP address or a Unix socket that
// only this user can connect to, and returns the base URL to print.
func listenProxy(addr string) (net.Listener, string, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, "", usageError(errors.New("--listen unix:PATH needs a path"))
		}
		ln, err := listenUnixPrivate(path)
		if err != nil {
			return nil, "", fmt.Errorf("--listen %s: %w", addr, err)
		}
		return ln, "unix:" + path, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", usageError(fmt.Errorf("--listen %q: want host:port or unix:PATH", addr))
	}
	if !discovery.IsLoopback(host) {
		return nil, "", usageError(fmt.Errorf("--listen %s: the proxy listens on loopback only (it holds your login)", addr))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--listen %s: %w", addr, err)
	}
	return ln, "http://" + ln.Addr().String(), nil
}

type proxyHandler struct {
	secret    []byte
	target    *url.URL
	base      string
	transport http.RoundTripper
	app       *App       // for a login's message and stderr
	logMu     sync.Mutex // one stderr line at a time
}

func (p *proxyHandler) handler() http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.target)
			pr.Out.Host = p.target.Host
			for _, h := range []string{"Authorization", "Proxy-Authorization", "X-Api-Key", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				pr.Out.Header.Del(h)
			}
		},
		Transport: p.transport,
		// 0: ReverseProxy flushes streaming answers (text/event-stream,
		// unknown length) at once by itself; -1 would flush every write
		// of every answer, a syscall per write.
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			// What points at the API points at the proxy, or a client
			// walks out of it (LESSONS 29); everything else is as sent.
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", p.toProxy(resp.Request.URL, loc))
			}
			if links := resp.Header.Values("Link"); len(links) > 0 {
				out := make([]string, len(links))
				for i, l := range links {
					out[i] = rewriteLinks(l, func(ref string) string { return p.toProxy(resp.Request.URL, ref) })
				}
				resp.Header["Link"] = out
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code, msg := http.StatusBadGateway, oneLine(err.Error())
			if exitCode(err) == ExitAuth {
				// A login a person must renew: 401, which clients do not
				// retry, with the command to run, also on latch's stderr.
				code, msg = http.StatusUnauthorized, p.app.message(err)
				p.logMu.Lock()
				fmt.Fprintln(p.app.Stderr, "latch proxy: "+msg)
				p.logMu.Unlock()
			}
			http.Error(w, "latch proxy: "+redact.Control(msg), code)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.IsAbs() || r.URL.Host != "" {
			http.Error(w, "latch proxy forwards requests to its API only: send a path, not a URL", http.StatusBadRequest)
			return
		}
		if hasDotSegment(r.URL.Path) {
			// /v3/../admin, raw or percent-encoded, would reach the whole
			// host with the token.
			http.Error(w, "latch proxy: a path with . or .. segments is refused", http.StatusBadRequest)
			return
		}
		if !p.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch proxy"`)
			http.Error(w, "latch proxy: send this run's secret as your bearer token", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// authorized reports whether r carries the secret, compared in constant time.
func (p *proxyHandler) authorized(r *http.Request) bool {
	got := r.Header.Get("X-Api-Key")
	if s, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(s)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), p.secret) == 1
}

// toProxy returns ref, a URL in a response to a request for reqURL, as the
// proxy's URL when it points into the API: the API's scheme and host, and
// its path or below on a segment boundary (/v3 covers /v3 and /v3/x, not
// /v3x). Anything else, and everything on a Unix socket, is returned
// unchanged.
func (p *proxyHandler) toProxy(reqURL *url.URL, ref string) string {
	u, err := reqURL.Parse(ref)
	if err != nil || !strings.HasPrefix(p.base, "http") || !strings.EqualFold(u.Scheme, p.target.Scheme) || !strings.EqualFold(u.Host, p.target.Host) {
		return ref
	}
	root := strings.TrimSuffix(p.target.EscapedPath(), "/")
	rest, ok := strings.CutPrefix(u.EscapedPath(), root)
	if !ok || (rest != "" && rest[0] != '/') {
		return ref
	}
	out := p.base + rest
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	return out
}

// rewriteLinks applies fn to each URI-Reference of a Link header value
// (RFC 8288 §3: <URI>; params, comma-separated), leaving quoted
// parameters as they are.
func rewriteLinks(v string, fn func(string) string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case c == '<' && !quoted:
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				b.WriteString("<" + fn(v[i+1:i+j]) + ">")
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hasDotSegment reports whether a decoded request path has a "." or ".."
// segment, with / or \ as separators (some servers take either).
func hasDotSegment(path string) bool {
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
