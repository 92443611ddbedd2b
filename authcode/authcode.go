// Package authcode logs a person in with the authorization code grant
// (RFC 6749 §4.1) through a loopback redirect (RFC 8252 §7.3) protected by
// PKCE with the S256 method (RFC 7636).
package authcode

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
)

// DefaultTimeout bounds the wait for the browser when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Minute

// openGrace is how long Login waits, after answering the callback, for
// OpenURL to return before cancelling its context.
const openGrace = 2 * time.Second

// CallbackPath is the path of the redirect URI.
const CallbackPath = "/callback"

// Sentinels for the outcomes a caller branches on. Use errors.Is.
var (
	// ErrAccessDenied: the person (or the server on their behalf) refused
	// the authorization request (RFC 6749 §4.1.2.1 access_denied).
	ErrAccessDenied = errors.New("access denied by the user")
	// ErrStateMismatch: the callback's state is not the one sent, so the
	// callback was not caused by this login (RFC 6749 §10.12). No token
	// was requested.
	ErrStateMismatch = errors.New("callback state does not match the request")
	// ErrTimeout: no callback arrived within Options.Timeout.
	ErrTimeout = errors.New("timed out waiting for the browser")
)

// AuthorizeError is an error answer delivered to the redirect URI
// (RFC 6749 §4.1.2.1). It matches ErrAccessDenied when Code is
// "access_denied".
type AuthorizeError struct {
	Code        string // "error"
	Description string // "error_description", cleaned for a terminal
	URI         string // "error_uri"
}

func (e *AuthorizeError) Error() string {
	s := "authorization server answered " + e.Code
	if e.Code == "access_denied" {
		s = ErrAccessDenied.Error()
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is makes an access_denied AuthorizeError match ErrAccessDenied.
func (e *AuthorizeError) Is(target error) bool {
	return target == ErrAccessDenied && e.Code == "access_denied"
}

// Options tune Login. Only OpenURL is required.
type Options struct {
	// OpenURL shows the authorization URL to the person: it should open
	// a browser and print the URL. It runs on its own goroutine and may
	// block while it drives a browser. When the login ends, Login gives it
	// a moment to return, then cancels ctx and waits for it. An error ends
	// the login; return nil if printing the URL suffices.
	OpenURL func(ctx context.Context, url string) error
	// Timeout bounds the wait for the callback; 0 means DefaultTimeout.
	Timeout time.Duration
	// Host is the loopback IP literal to listen on; "" means 127.0.0.1
	// (RFC 8252 §7.3, §8.3).
	Host string
	// Port to listen on; 0 picks a free one (RFC 8252 §7.3).
	Port int
	// RedirectURI, when set, is the exact loopback redirect URI the client
	// is registered with, such as http://127.0.0.1:8765/callback or
	// http://localhost:8765/cb (servers that match it exactly, with a
	// fixed port and path). Its host must be 127.0.0.1, [::1] or
	// localhost (RFC 8252 §7.3, §8.3); it overrides Host and Port.
	RedirectURI string
	// Paste, when set, is read for what the person pastes when the
	// browser cannot reach the loopback listener (SSH, another machine):
	// the URL the browser was sent to, its query, CODE#STATE, or the bare
	// code. The first of the callback and a paste ends the wait; blank
	// lines are skipped. Login does not wait for a Read in progress to
	// return. A bare code carries no state and no iss, so it is refused
	// when IssuerRequired.
	Paste io.Reader
	// IssuerRequired refuses a response without the iss parameter (RFC
	// 9207 §2.4). Set it when the server's metadata has
	// authorization_response_iss_parameter_supported.
	IssuerRequired bool
	// AuthParams go with the authorization request only (RFC 6749
	// §3.1), such as the acr_values and max_age a step-up challenge asks
	// for (RFC 9470 §4), unlike Config.Params, which every token request
	// carries too. They replace Config.Params of the same name, never a
	// parameter Login sets itself.
	AuthParams url.Values
	// SuccessHTML and FailureHTML are the pages shown in the browser
	// after the login; "" means a default page. They are sent verbatim.
	SuccessHTML string
	FailureHTML string
}

// Login runs the authorization code flow with PKCE on a loopback redirect
// URI (RFC 8252 §7.3, RFC 7636 §4): it listens on Options.Host, asks
// OpenURL to show the authorization URL, waits for one callback, checks
// its state and exchanges the code at cfg's token endpoint with the code
// verifier. Requests to other paths (such as /favicon.ico) are ignored.
// The callback server is shut down before Login returns.
func Login(ctx context.Context, cfg *latch.Config, opts Options) (*latch.Token, error) {
	if cfg == nil || cfg.Endpoint.AuthURL == "" {
		return nil, errors.New("login: no authorization endpoint configured")
	}
	if cfg.Endpoint.TokenURL == "" {
		return nil, errors.New("login: no token endpoint configured")
	}
	if opts.OpenURL == nil {
		return nil, errors.New("login: Options.OpenURL is nil")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ln, path, redirectURI, err := listen(opts)
	if err != nil {
		return nil, err
	}
	state, err := randomString()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("login: make state: %w", err)
	}
	verifier := oauth2.GenerateVerifier()
	authURL, err := authorizeURL(cfg, redirectURI, state, oauth2.S256ChallengeFromVerifier(verifier), opts.AuthParams)
	if err != nil {
		ln.Close()
		return nil, err
	}

	w := startWait(ctx, opts, ln, path, authURL)
	defer w.stop(ctx)
	q, err := w.callback(ctx, timeout)
	if err != nil {
		return nil, err
	}
	tok, err := finish(ctx, cfg, q, response{state: state, verifier: verifier, redirectURI: redirectURI, issRequired: opts.IssuerRequired})
	w.cb.finish(err)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return tok, nil
}

// listen opens the loopback listener for the redirect (RFC 8252 §7.3):
// on opts.RedirectURI's host, port and path when given, else on an
// ephemeral port of 127.0.0.1 (or opts.Host and opts.Port).
func listen(opts Options) (ln net.Listener, path, redirectURI string, err error) {
	host, port, path := opts.Host, strconv.Itoa(opts.Port), CallbackPath
	if opts.RedirectURI != "" {
		if host, port, path, err = ParseRedirectURI(opts.RedirectURI); err != nil {
			return nil, "", "", err
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, "", "", fmt.Errorf("login: listen host %q is not a loopback IP address (RFC 8252 §7.3)", host)
	}
	ln, err = net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", "", fmt.Errorf("login: port %s of the redirect URI is in use (another login still waiting, or another program); end it or register another port", port)
		}
		return nil, "", "", fmt.Errorf("login: listen for callback: %w", err)
	}
	redirectURI = "http://" + ln.Addr().String() + path
	if opts.RedirectURI != "" {
		redirectURI = opts.RedirectURI // sent exactly as registered
	}
	return ln, path, redirectURI, nil
}

// wait is one login's wait for the browser: the callback server and the
// OpenURL call, both running until stop.
type wait struct {
	cb           *callback
	srv          *http.Server
	served       chan struct{}
	opened       chan error  // OpenURL's result
	pasted       chan pasted // what Options.Paste brought
	cancelOpen   context.CancelFunc
	openReturned bool
	answered     bool // the callback brought an answer
}

func startWait(ctx context.Context, opts Options, ln net.Listener, path, authURL string) *wait {
	w := &wait{cb: newCallback(opts, path), served: make(chan struct{}), opened: make(chan error, 1), pasted: make(chan pasted, 1)}
	if opts.Paste != nil {
		go readPaste(opts.Paste, w.pasted)
	}
	w.srv = &http.Server{Handler: w.cb, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(w.served)
		_ = w.srv.Serve(ln) // http.ErrServerClosed after Shutdown
	}()
	var openCtx context.Context
	openCtx, w.cancelOpen = context.WithCancel(ctx)
	go func() { w.opened <- opts.OpenURL(openCtx, authURL) }()
	return w
}

// callback waits up to timeout for the redirect's query. OpenURL
// returning nil does not end the wait; its error does.
func (w *wait) callback(ctx context.Context, timeout time.Duration) (url.Values, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		oc := w.opened
		if w.openReturned {
			oc = nil
		}
		select {
		case q := <-w.cb.params:
			w.answered = true
			return q, nil
		case p := <-w.pasted:
			if p.err != nil {
				return nil, fmt.Errorf("login: %w", p.err)
			}
			return p.q, nil
		case err := <-oc:
			w.openReturned = true
			if err != nil {
				return nil, fmt.Errorf("login: open browser: %w", err)
			}
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, fmt.Errorf("login: %w", ctx.Err())
			}
			return nil, fmt.Errorf("login: %w after %s", ErrTimeout, timeout)
		}
	}
}

// stop releases a callback still waiting for an outcome, lets its page
// reach the browser, stops the server, then waits for OpenURL.
func (w *wait) stop(ctx context.Context) {
	w.cb.finish(errors.New("login ended"))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if w.srv.Shutdown(sctx) != nil {
		w.srv.Close()
	}
	cancel()
	<-w.served
	if !w.openReturned && w.answered {
		// A browser driven by OpenURL may still be reading the page;
		// cancelling now would cut it off.
		select {
		case <-w.opened:
			w.openReturned = true
		case <-time.After(openGrace):
		}
	}
	w.cancelOpen()
	if !w.openReturned {
		<-w.opened
	}
}

// response is what a login's authorization response is checked against.
type response struct {
	state, verifier, redirectURI string
	issRequired                  bool
}

// finish checks the callback (RFC 6749 §4.1.2, RFC 9207 §2.4) and redeems
// the code (RFC 6749 §4.1.3, RFC 7636 §4.5). A pasted bare code has
// q[bareCode] set: it carries no state to check.
func finish(ctx context.Context, cfg *latch.Config, q url.Values, r response) (*latch.Token, error) {
	bare := q.Has(bareCode)
	if bare && r.issRequired {
		return nil, errors.New("paste the whole URL the browser was sent to, not only the code: the server sends its issuer in it (RFC 9207), which latch checks; no token was requested")
	}
	if !bare && subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(r.state)) != 1 {
		return nil, fmt.Errorf("%w; no token was requested", ErrStateMismatch)
	}
	iss := q.Get("iss")
	if iss != "" && cfg.Issuer != "" && strings.TrimSuffix(iss, "/") != strings.TrimSuffix(cfg.Issuer, "/") {
		return nil, fmt.Errorf("callback from issuer %q, want %q (RFC 9207); no token was requested", clean(iss), cfg.Issuer)
	}
	if iss == "" && r.issRequired && !bare {
		return nil, fmt.Errorf("the authorization response has no iss parameter, though %s says it sends one (RFC 9207 §2.4): it may come from another server (a mix-up attack); no token was requested", cfg.Issuer)
	}
	if code := q.Get("error"); code != "" {
		return nil, &AuthorizeError{Code: clean(code), Description: clean(q.Get("error_description")), URI: clean(q.Get("error_uri"))}
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("callback has neither code nor error")
	}
	tok, err := cfg.Grant(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {r.redirectURI},
		"code_verifier": {r.verifier},
	})
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	return tok, nil
}

func authorizeURL(cfg *latch.Config, redirectURI, state, challenge string, extra url.Values) (string, error) {
	u, err := url.Parse(cfg.Endpoint.AuthURL)
	if err != nil {
		return "", fmt.Errorf("login: parse authorization endpoint: %w", err)
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", cfg.ClientID)
	q.Set("redirect_uri", redirectURI)
	if len(cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	q.Set("state", state)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	for k, vs := range extra {
		if _, ok := q[k]; !ok {
			q[k] = append([]string(nil), vs...)
		}
	}
	cfg.AddParams(q) // after extra: a step-up's acr_values beats a remembered one
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ParseRedirectURI checks a fixed loopback redirect URI (RFC 8252 §7.3:
// http, a loopback host, a port) and returns the address to listen on
// and the path to serve. localhost is listened for on 127.0.0.1
// (RFC 8252 §8.3).
func ParseRedirectURI(raw string) (host, port, path string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Port() == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", "", fmt.Errorf("login: redirect URI %q: want http://127.0.0.1:PORT/PATH or http://localhost:PORT/PATH (RFC 8252 §7.3)", raw)
	}
	host = u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", "", "", fmt.Errorf("login: redirect URI %q: the host must be 127.0.0.1, [::1] or localhost (RFC 8252 §7.3)", raw)
	}
	path = u.Path
	if path == "" {
		path = "/"
	}
	return host, u.Port(), path, nil
}

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// clean keeps a server-supplied string fit for one terminal line.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "")
}
