package latch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/latchdev/latch/internal/redact"
)

// defaultMaxReplay is how much of a request body without GetBody the
// Transport buffers so it can replay it after a 401.
const defaultMaxReplay = 1 << 20

// Transport is an http.RoundTripper that authorizes each request with a
// bearer token from Source (RFC 6750 §2.1). When Source is a Refresher, a
// 401 (RFC 6750 §3.1) refreshes the token once and replays the request
// once. Transport never modifies the caller's request, closes the request
// body exactly once, and sends the token only to Origins and never on a
// redirected hop to another host. It is safe for concurrent use.
type Transport struct {
	Source TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Origins, when set, are the only scheme://host[:port] values that get
	// the token; other requests pass through with no Authorization.
	Origins []string
	// MaxReplay bounds the buffering of bodies that have no GetBody; a
	// larger body streams and cannot be replayed. 0 means 1 MiB;
	// a negative value disables buffering.
	MaxReplay int64
}

var _ http.RoundTripper = (*Transport)(nil)

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.authorize(req) {
		return t.base().RoundTrip(req)
	}
	ctx := req.Context()
	tok, err := t.token(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	rf, canRefresh := t.Source.(Refresher)

	body, getBody, replayable, err := t.prepareBody(req, canRefresh)
	if err != nil {
		return nil, err
	}
	resp, err := t.base().RoundTrip(clone(req, authorization(t.Source, tok), body, getBody))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !canRefresh || askedToStepUp(resp.Header) {
		return resp, err
	}

	// 401: the token was rejected. Refresh once, replay once; when the
	// Refresher has no newer token (this one was fresh from a refresh
	// after a 401 already), the 401 is the answer.
	ntok, err := rf.Refresh(ctx, tok)
	if err == nil && ntok == nil {
		err = errors.New("latch: Refresher returned no token and no error")
	}
	if err == nil && ntok.SameSet(tok) && ntok.AccessToken == tok.AccessToken {
		return resp, nil
	}
	drain(resp)
	if err != nil {
		return nil, err
	}
	if !replayable {
		return nil, fmt.Errorf("%s %s: %w", req.Method, redact.URL(req.URL), ErrBodyNotReplayable)
	}
	if getBody != nil {
		if body, err = getBody(); err != nil {
			return nil, fmt.Errorf("replay request body: %w", err)
		}
	}
	return t.base().RoundTrip(clone(req, authorization(t.Source, ntok), body, getBody))
}

func (t *Transport) token(ctx context.Context) (*Token, error) {
	if t.Source == nil {
		return nil, errors.New("latch: Transport has no Source")
	}
	tok, err := t.Source.Token(ctx)
	if err == nil && tok == nil {
		err = errors.New("latch: TokenSource returned no token and no error")
	}
	return tok, err
}

// authorization returns tok's Authorization header values, computed
// once per token when src is a Source or StaticToken.
func authorization(src TokenSource, tok *Token) []string {
	switch s := src.(type) {
	case *Source:
		return s.authorization(tok)
	case staticSource:
		if tok == s.t {
			return s.auth.of(tok)
		}
	}
	return authorizationHeader(tok)
}

// authorize reports whether req may carry the token: its origin is
// allowed and, on a redirected hop, it is the same host as the first hop.
func (t *Transport) authorize(req *http.Request) bool {
	if len(t.Origins) > 0 && !matchOrigin(t.Origins, req) {
		return false
	}
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return first == req || (first.URL.Host == req.URL.Host && first.URL.Scheme == req.URL.Scheme)
}

func matchOrigin(origins []string, req *http.Request) bool {
	for _, o := range origins {
		scheme, host, ok := strings.Cut(o, "://")
		if ok && strings.EqualFold(scheme, req.URL.Scheme) && strings.EqualFold(strings.TrimSuffix(host, "/"), req.URL.Host) {
			return true
		}
	}
	return false
}

// prepareBody decides how the body can be replayed. Bodies with GetBody
// replay through it; others are buffered up to MaxReplay; a larger body
// streams without replay.
func (t *Transport) prepareBody(req *http.Request, canRefresh bool) (body io.ReadCloser, getBody func() (io.ReadCloser, error), replayable bool, err error) {
	if req.Body == nil || req.Body == http.NoBody || !canRefresh {
		return req.Body, req.GetBody, true, nil
	}
	if req.GetBody != nil {
		return req.Body, req.GetBody, true, nil
	}
	limit := t.MaxReplay
	if limit == 0 {
		limit = defaultMaxReplay
	}
	if limit < 0 {
		return req.Body, nil, false, nil
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		req.Body.Close()
		return nil, nil, false, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(buf)) > limit {
		// Too large to hold: stream what was read, then the rest.
		return readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, nil, false, nil
	}
	req.Body.Close()
	getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	body, _ = getBody()
	return body, getBody, true, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// clone makes the request that is sent: a shallow copy of req with its
// own header map, so the caller's request is never modified.
func clone(req *http.Request, bearer []string, body io.ReadCloser, getBody func() (io.ReadCloser, error)) *http.Request {
	r := new(http.Request)
	*r = *req
	h := maps.Clone(req.Header) // shallow: the values are not changed
	if h == nil {
		h = make(http.Header, 1)
	}
	h["Authorization"] = bearer
	r.Header = h
	r.Body = body
	r.GetBody = getBody
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain reads a little of a response that is being discarded, so its
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// askedToStepUp reports a 401 that accepts the token but asks for a
// stronger authentication (RFC 9470 §3): a refresh cannot give that, and
// the set must not be treated as rejected.
func askedToStepUp(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if strings.Contains(v, "insufficient_user_authentication") {
			return true
		}
	}
	return false
}
