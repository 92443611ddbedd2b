// Package debughttp logs HTTP traffic for --debug, in the style of curl -v,
// with every secret redacted by structure (see internal/redact). It sits
// below the auth transport, so it sees the Authorization header and the
// token-endpoint exchange (RFC 6749 §4.1.3, §6); its redaction is what makes
// --debug safe to paste into an issue.
package debughttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchdev/latch/internal/redact"
)

// DefaultMaxBody is how much of a body is logged when MaxBody is 0.
const DefaultMaxBody = 64 << 10

// Transport is an http.RoundTripper that logs each request and response to
// Out and otherwise passes them through unchanged. It never modifies the
// caller's request; the request body is closed by Base, exactly once. A
// request body is logged only when it can be read again through GetBody;
// a streaming body is sent untouched and logged as "[streaming body …]".
// Up to MaxBody bytes of a response body are read ahead for the log and
// handed back to the caller in front of the rest.
//
// A Transport is safe for concurrent use; each request and each response is
// written to Out with one Write, under a lock, so parallel requests do not
// interleave within a block. Share one *Transport between clients that log
// to the same Out. It must not be copied after first use.
type Transport struct {
	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Out receives the log. Nil turns logging off.
	Out io.Writer
	// MaxBody bounds the bytes of each body that are read for the log.
	// 0 means DefaultMaxBody; a negative value logs no bodies.
	MaxBody int

	mu    sync.Mutex
	known []string // secrets seen so far, hidden wherever else they appear
}

// maxKnown bounds how many secrets a Transport remembers.
const maxKnown = 256

// learn remembers secret values seen in a request or response, so that a
// server that quotes one (say, a refresh token in error_description) does
// not reveal it. Values shorter than 8 bytes are not remembered: hiding
// every "1234" would garble the log and hide nothing worth it.
func (t *Transport) learn(secrets []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range secrets {
		if len(v) >= 8 && len(t.known) < maxKnown && !slices.Contains(t.known, v) {
			t.known = append(t.known, v)
		}
	}
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Out == nil {
		return base.RoundTrip(req)
	}
	target := req.Method + " " + redact.URL(req.URL)
	t.learn(requestSecrets(req))

	var b bytes.Buffer
	b.WriteString("> " + clean(target) + "\n")
	if req.Host != "" && req.URL != nil && req.Host != req.URL.Host {
		b.WriteString("> Host: " + clean(req.Host) + "\n")
	}
	if req.ContentLength > 0 && req.Header.Get("Content-Length") == "" {
		fmt.Fprintf(&b, "> Content-Length: %d\n", req.ContentLength)
	}
	writeHeader(&b, "> ", req.Header)
	b.WriteString(">\n")
	t.requestBody(&b, req)
	b.WriteString("\n")
	t.write(b.Bytes())

	start := time.Now()
	resp, err := base.RoundTrip(req)
	elapsed := time.Since(start).Round(time.Microsecond)

	b.Reset()
	if err != nil {
		fmt.Fprintf(&b, "* %s: error after %s: %s\n\n", clean(target), elapsed, clean(errString(err, req)))
		t.write(b.Bytes())
		return resp, err
	}
	status := resp.Status
	if status == "" {
		status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	b.WriteString("< " + clean(resp.Proto+" "+status) + "\n")
	writeHeader(&b, "< ", resp.Header)
	b.WriteString("<\n")
	t.responseBody(&b, req, resp)
	fmt.Fprintf(&b, "* %s: %s in %s\n\n", clean(target), clean(status), elapsed)
	t.write(b.Bytes())
	return resp, nil
}

func (t *Transport) write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.known) > 0 {
		p = []byte(redact.Text(string(p), t.known...))
	}
	_, _ = t.Out.Write(p) // a failing log must not fail the request
}

func (t *Transport) maxBody() int {
	if t.MaxBody == 0 {
		return DefaultMaxBody
	}
	return t.MaxBody
}

// requestBody logs the request body if it can be read from a copy
// (GetBody); it never reads req.Body itself.
func (t *Transport) requestBody(b *bytes.Buffer, req *http.Request) {
	max := t.maxBody()
	if max < 0 || req.Body == nil || req.Body == http.NoBody {
		return
	}
	if req.GetBody == nil {
		if req.ContentLength > 0 {
			fmt.Fprintf(b, "[streaming body, %d bytes, not logged]\n", req.ContentLength)
		} else {
			b.WriteString("[streaming body, not logged]\n")
		}
		return
	}
	rc, err := req.GetBody()
	if err != nil {
		b.WriteString("[body not logged: " + clean(errString(err, req)) + "]\n")
		return
	}
	buf, err := io.ReadAll(io.LimitReader(rc, int64(max)+1))
	rc.Close()
	if err != nil {
		b.WriteString("[body not logged: " + clean(errString(err, req)) + "]\n")
		return
	}
	t.learn(redact.Secrets(req.Header.Get("Content-Type"), buf))
	writeBody(b, req.Header.Get("Content-Type"), buf, max, req.ContentLength)
}

// responseBody reads up to MaxBody bytes of the response body for the log
// and puts them back in front of the rest, so the caller reads it whole.
func (t *Transport) responseBody(b *bytes.Buffer, req *http.Request, resp *http.Response) {
	max := t.maxBody()
	if max < 0 || resp.Body == nil || resp.Body == http.NoBody || req.Method == http.MethodHead {
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		b.WriteString("[switched protocols, not logged]\n")
		return
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt == "text/event-stream" {
		b.WriteString("[event stream, not logged]\n") // reading ahead would stall it
		return
	}
	orig := resp.Body
	buf, err := io.ReadAll(io.LimitReader(orig, int64(max)+1))
	rest := io.Reader(orig)
	if err != nil {
		rest = errReader{err}
	}
	resp.Body = &body{Reader: io.MultiReader(bytes.NewReader(buf), rest), Closer: orig}
	if err != nil {
		fmt.Fprintf(b, "[body not logged: read error after %d bytes]\n", len(buf))
		return
	}
	t.learn(redact.Secrets(ct, buf))
	writeBody(b, ct, buf, max, resp.ContentLength)
}

// writeBody writes buf redacted; when it holds more than max bytes, only
// the first max are shown and the rest is counted.
func writeBody(b *bytes.Buffer, contentType string, buf []byte, max int, length int64) {
	if len(buf) == 0 {
		return
	}
	if len(buf) <= max {
		b.WriteString(clean(string(redact.Body(contentType, buf))))
		b.WriteString("\n")
		return
	}
	b.WriteString(clean(string(redact.BodyPrefix(contentType, buf[:max]))))
	if length > int64(max) {
		fmt.Fprintf(b, "…[%d more bytes]\n", length-int64(max))
	} else {
		b.WriteString("…[more bytes]\n")
	}
}

func writeHeader(b *bytes.Buffer, prefix string, h http.Header) {
	r := redact.Header(h)
	for _, k := range slices.Sorted(maps.Keys(r)) {
		for _, v := range r[k] {
			b.WriteString(prefix)
			b.WriteString(clean(k + ": " + v))
			b.WriteString("\n")
		}
	}
}

// errString renders err without the secrets the request carried: a
// *url.Error's URL is redacted, and any secret value of the request that
// the message quotes is replaced.
func errString(err error, req *http.Request) string {
	s := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			s = strings.ReplaceAll(s, ue.URL, redact.URL(u))
		}
	}
	return redact.Text(s, requestSecrets(req)...)
}

// requestSecrets lists the secret values a request carries in its URL and
// headers, for redact.Text.
func requestSecrets(req *http.Request) []string {
	var out []string
	if u := req.URL; u != nil {
		if u.User != nil {
			p, _ := u.User.Password()
			out = append(out, u.User.Username(), p)
		}
		for k, vs := range u.Query() {
			if redact.Sensitive(k) {
				out = append(out, vs...)
			}
		}
	}
	for k, vs := range req.Header {
		if redact.Sensitive(k) {
			for _, v := range vs {
				_, cred, _ := strings.Cut(v, " ")
				out = append(out, v, cred)
			}
		}
	}
	return out
}

// clean escapes control characters other than tab and newline (C1 too),
// so a hostile body cannot drive the terminal.
func clean(s string) string { return redact.Control(s) }

// body is a response body whose first bytes were read ahead for the log.
type body struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
