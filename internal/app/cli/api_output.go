package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/jsoncolor"
	"github.com/latchdev/latch/internal/redact"
	"github.com/latchdev/latch/stepup"
)

// apiPrinter writes responses the way gh does: JSON pretty and coloured
// on a terminal, bytes unchanged when piped.
type apiPrinter struct {
	out     *lastByteWriter
	errOut  io.Writer
	tty     bool
	color   bool
	include bool
	silent  bool
	slurp   bool
	jq      *gojq.Code
	pages   [][]byte // with slurp, each page compacted
	static  bool     // the token is LATCH_TOKEN's, never refreshed
	// stepUp names the login that meets a step-up challenge.
	stepUp func(*stepup.Challenge) string
	// stepUpNow: a challenge that names what it needs, on the first
	// page, is returned as *stepUpNeeded, unprinted (--step-up);
	// stepUpWhyNot says why --step-up will not; afterStepUp: this is
	// the replay after one.
	stepUpNow    bool
	stepUpWhyNot string
	afterStepUp  bool
	printed      bool // a page was printed or kept
}

// page prints one response, or keeps it with --slurp, and returns the
// next page: a URL for REST, a cursor for GraphQL, or "". An HTTP error
// or a GraphQL error prints the body and a one-line summary on stderr,
// and returns a silent exit error (status 1).
func (p *apiPrinter) page(ctx context.Context, resp *http.Response, graphQL bool) (string, error) {
	if c := stepup.Parse(resp.StatusCode, resp.Header); c != nil && p.stepUpNow && !p.printed && !p.static &&
		(c.Error != "insufficient_scope" || len(c.Scopes) > 0) {
		return "", &stepUpNeeded{c: c} // nothing printed: the request is sent again after the login
	}
	if p.include {
		p.headers(resp)
	}
	isJSON := graphQL || isJSONType(resp.Header.Get("Content-Type"))
	if resp.StatusCode >= 400 {
		return "", p.httpError(resp, isJSON)
	}
	p.printed = true
	if !graphQL && p.jq == nil && !p.slurp {
		next := nextLink(resp.Request.URL, resp.Header.Values("Link"))
		if p.silent {
			return next, nil
		}
		return next, p.body(resp.Body, isJSON)
	}

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read response: %w", err)
	}
	var next string
	if graphQL {
		if msgs := graphQLErrors(b); len(msgs) > 0 {
			return "", p.graphQLError(b, msgs)
		}
		next, _ = nextCursor(b)
	} else {
		next = nextLink(resp.Request.URL, resp.Header.Values("Link"))
	}
	return next, p.kept(ctx, b, isJSON)
}

// httpError prints an error answer (its body, unless --silent, and the
// status on stderr, with the fix when latch knows it) and returns exit 1.
func (p *apiPrinter) httpError(resp *http.Response, isJSON bool) error {
	if !p.silent {
		if err := p.body(resp.Body, isJSON); err != nil {
			return err
		}
	}
	text := strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode)))
	if text == "" {
		text = http.StatusText(resp.StatusCode)
	}
	fmt.Fprintf(p.errOut, "HTTP %d: %s (%s)\n", resp.StatusCode, text, safeURL(resp.Request.URL))
	if resp.StatusCode == http.StatusUnauthorized && p.static {
		fmt.Fprintf(p.errOut, "The token in %s was rejected; latch sends it as is and never refreshes it. Set a fresh one, or unset %s to use your login.\n", EnvToken, EnvToken)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if m := discovery.ResourceChallenge(resp.Header.Get("WWW-Authenticate")); m != "" && discovery.CheckURL(m) == nil {
			// RFC 9728 §5.1: the API says where its tokens come from.
			fmt.Fprintf(p.errOut, "The API names its authorization server in %s (RFC 9728); to log in for it: latch auth login --resource %s\n",
				redact.Control(m), quoteArg(challengedResource(resp.Request.URL, m)))
		}
	}
	if c := stepup.Parse(resp.StatusCode, resp.Header); c != nil && p.stepUp != nil && !p.static {
		if p.afterStepUp {
			fmt.Fprintln(p.errOut, "The API refused the request again after the step-up login; latch steps up once per request.")
		}
		fmt.Fprintln(p.errOut, stepUpMessage(c, p.stepUp(c)))
		switch {
		case p.stepUpWhyNot != "":
			fmt.Fprintf(p.errOut, "(Not logging in again by itself: %s.)\n", p.stepUpWhyNot)
		case p.stepUpNow && p.printed:
			fmt.Fprintln(p.errOut, "(Not logging in again by itself: earlier pages were already printed; run the command again after that login.)")
		}
		if c.Error != "insufficient_scope" || len(c.Scopes) > 0 {
			// More than this login grants, and what: a new login, not a
			// retry (exit 4). An unnamed scope names no login: exit 1.
			return &ExitError{Code: ExitAuth, Silent: true}
		}
	}
	return &ExitError{Code: ExitAPI, Silent: true}
}

// graphQLError prints a GraphQL answer that carries "errors" (sent with
// a 200 by most servers) and returns exit 1.
func (p *apiPrinter) graphQLError(b []byte, msgs []string) error {
	if !p.silent {
		if err := p.body(bytes.NewReader(b), true); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.errOut, "GraphQL: %s\n", strings.Join(msgs, "; "))
	return &ExitError{Code: ExitAPI, Silent: true}
}

// kept handles a page read whole: kept for --slurp, filtered by --jq, or
// printed.
func (p *apiPrinter) kept(ctx context.Context, b []byte, isJSON bool) error {
	switch {
	case p.slurp:
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return fmt.Errorf("api: --slurp: response is not JSON: %w", err)
		}
		p.pages = append(p.pages, c.Bytes())
	case p.silent:
	case p.jq != nil:
		return p.runJQ(ctx, b)
	default:
		return p.body(bytes.NewReader(b), isJSON)
	}
	return nil
}

// finish prints what --slurp kept: one JSON array of all pages.
func (p *apiPrinter) finish(ctx context.Context) error {
	if !p.slurp || p.silent {
		return nil
	}
	all := append([]byte{'['}, bytes.Join(p.pages, []byte{','})...)
	all = append(all, ']', '\n')
	if p.jq != nil {
		return p.runJQ(ctx, all)
	}
	return p.body(bytes.NewReader(all), true)
}

// body writes a response body. On a terminal, valid JSON is
// pretty-printed; anything else is copied unchanged.
func (p *apiPrinter) body(r io.Reader, isJSON bool) error {
	p.separate()
	if !isJSON || !p.tty {
		if _, err := io.Copy(p.out, r); err != nil {
			return fmt.Errorf("print response: %w", err)
		}
		return nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if !json.Valid(b) {
		_, err = p.out.Write(b)
	} else {
		err = jsoncolor.Write(p.out, bytes.NewReader(b), "  ", p.color)
	}
	if err != nil {
		return fmt.Errorf("print response: %w", err)
	}
	return nil
}

// runJQ applies --jq to one JSON document. Strings print raw, like jq -r;
// other values print as JSON, pretty on a terminal.
func (p *apiPrinter) runJQ(ctx context.Context, b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("api: --jq: response is not JSON: %w", err)
	}
	iter := p.jq.RunWithContext(ctx, v)
	for {
		x, ok := iter.Next()
		if !ok {
			return nil
		}
		if err, ok := x.(error); ok {
			var he *gojq.HaltError
			if errors.As(err, &he) && he.Value() == nil {
				return nil
			}
			return fmt.Errorf("api: --jq: %w", err)
		}
		p.separate()
		if s, ok := x.(string); ok {
			io.WriteString(p.out, s+"\n")
			continue
		}
		out, err := gojq.Marshal(x)
		if err != nil {
			return fmt.Errorf("api: --jq: %w", err)
		}
		if p.tty {
			err = jsoncolor.Write(p.out, bytes.NewReader(out), "  ", p.color)
		} else {
			_, err = p.out.Write(append(out, '\n'))
		}
		if err != nil {
			return fmt.Errorf("print response: %w", err)
		}
	}
}

// headers prints the status line and headers, sorted, then a blank line.
func (p *apiPrinter) headers(resp *http.Response) {
	p.separate()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", resp.Proto, resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if p.color {
			name = "\x1b[1;34m" + k + "\x1b[m"
		}
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteString("\n")
	io.WriteString(p.out, b.String())
}

// separate ends the previous output with a newline, so pages printed
// one after another stay apart.
func (p *apiPrinter) separate() {
	if p.out.n > 0 && p.out.last != '\n' {
		p.out.Write([]byte{'\n'})
	}
}

// lastByteWriter remembers the last byte written.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
}

func (w *lastByteWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if n > 0 {
		w.n += int64(n)
		w.last = b[n-1]
	}
	return n, err
}

// isJSONType reports whether a Content-Type is JSON: */json or */*+json.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json"))
}

// jsonBody encodes fields as a JSON request body, without HTML escaping.
func jsonBody(params map[string]any) (io.Reader, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(params); err != nil {
		return nil, fmt.Errorf("api: encode fields: %w", err)
	}
	return &b, nil
}

// challengedResource is the resource a resource_metadata challenge names
// (RFC 9728 §5.1): its URL without the well-known path, so a path-scoped
// resource such as https://host/mcp is named as itself. A challenge that
// points off the request's origin names only the origin.
func challengedResource(req *url.URL, metadataURL string) string {
	origin := req.Scheme + "://" + req.Host
	r, ok := discovery.ResourceOf(metadataURL)
	if !ok || (r != origin && !strings.HasPrefix(r, origin+"/")) {
		return origin
	}
	return r
}

// quoteArg quotes s for a POSIX shell when it holds anything but
// characters that are safe bare.
func quoteArg(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return shellQuote(s)
}
