package latch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/internal/jsonobj"
	"github.com/latchdev/latch/internal/redact"
	"github.com/latchdev/latch/storekit"
)

// maxAnswer is the most of an authorization server's answer that is read.
const maxAnswer = 1 << 20

// Config describes an OAuth 2.0 client of one authorization server and how
// it talks to the server's token endpoint (RFC 6749 §3.2).
type Config struct {
	// Issuer identifies the authorization server (RFC 8414 §2). Tokens
	// obtained through this Config are bound to it.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Endpoint holds the authorization, device and token URLs. Its
	// AuthStyle picks how the client authenticates; AuthStyleAutoDetect
	// means in the body for a public client and in the header when
	// there is a secret. Latch never tries a second style: against a
	// rotating server that would spend the grant twice.
	Endpoint      oauth2.Endpoint
	RevocationURL string // RFC 7009 §2
	Scopes        []string
	// Params are extra parameters sent with the authorization request
	// (RFC 6749 §3.1), the device authorization request (RFC 8628 §3.1)
	// and every token request, such as resource (RFC 8707 §2) or an
	// audience. They never replace a parameter latch sets itself.
	Params url.Values

	// HTTPClient sends token requests. Nil means http.DefaultTransport.
	// Its redirect policy is ignored: token requests never follow
	// redirects, because a 307 would replay the grant elsewhere.
	HTTPClient *http.Client
	// Timeout bounds each token request; 0 means DefaultTimeouts.Token,
	// even when the caller's context has no deadline.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Key returns the key for a credential of this client acting for account.
func (c *Config) Key(account string) Key {
	return Key{Issuer: c.Issuer, ClientID: c.ClientID, Account: account}
}

// Refresh redeems a refresh token (RFC 6749 §6). If the answer carries no
// new refresh token, the old one is kept in the result.
func (c *Config) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	t, err := c.Grant(ctx, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// Grant sends one token request (RFC 6749 §4.1.3, §6; RFC 8628 §3.4) and
// parses the answer (RFC 6749 §5). It is sent exactly once, never follows a
// redirect, reads at most 1 MiB and is bounded by Timeout.
// An error answer is a *TokenError, even with status 200; an answer that is
// not valid JSON is a *ResponseError.
func (c *Config) Grant(ctx context.Context, form url.Values) (*Token, error) {
	if c.Endpoint.TokenURL == "" {
		return nil, errors.New("token request: no token endpoint configured")
	}
	resp, body, err := c.call(ctx, c.Endpoint.TokenURL, form)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	t, err := c.parseToken(resp, body)
	var te *TokenError
	if errors.As(err, &te) {
		te.hide(formSecrets(form, c.ClientSecret)...)
	}
	return t, err
}

// formSecrets lists the secret values of a token request, which a server
// might quote back in its error text.
func formSecrets(form url.Values, clientSecret string) []string {
	out := []string{clientSecret}
	for k, vs := range form {
		if redact.Sensitive(k) {
			out = append(out, vs...)
		}
	}
	return out
}

// Revoke asks the server to revoke a token (RFC 7009 §2.1). hint is
// "refresh_token" or "access_token". An unsupported_token_type answer is an
// error; a 200 is success whether or not the token was known.
func (c *Config) Revoke(ctx context.Context, token, hint string) error {
	if c.RevocationURL == "" {
		return errors.New("revoke token: server has no revocation endpoint")
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, body, err := c.call(ctx, c.RevocationURL, form)
	if resp != nil && resp.StatusCode == http.StatusOK {
		return nil // whatever the body says (RFC 7009 §2.2)
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if te := parseTokenError(resp.StatusCode, body); te != nil {
		te.hide(token, c.ClientSecret)
		return fmt.Errorf("revoke token: %w", te)
	}
	return fmt.Errorf("revoke token: %w", responseError(resp, "unexpected status"))
}

// Post sends form to another endpoint of this authorization server than
// the token endpoint, such as the device authorization endpoint (RFC 8628
// §3.1), with the token endpoint's rules: no redirects, Timeout, client
// authentication, Params. It returns the answer and its JSON object when
// the status is 2xx. An error answer (RFC 6749 §5.2) is a *TokenError,
// with the values of the answer's fields named in hide and the client
// secret left out of its text; any other failure is a *ResponseError or
// the transport's error.
func (c *Config) Post(ctx context.Context, endpoint string, form url.Values, hide ...string) (*http.Response, []byte, error) {
	resp, body, err := c.call(ctx, endpoint, form)
	if err != nil {
		return nil, nil, err
	}
	var ej errorJSON
	if !jsonobj.Looks(body) || json.Unmarshal(body, &ej) != nil {
		if resp.StatusCode/100 != 2 {
			return nil, nil, responseError(resp, "")
		}
		return nil, nil, responseError(resp, "answer is not valid JSON")
	}
	if ej.Error != "" {
		var fields map[string]any
		_ = json.Unmarshal(body, &fields)
		secrets := []string{c.ClientSecret}
		for _, f := range hide {
			if v, ok := fields[f].(string); ok {
				secrets = append(secrets, v)
			}
		}
		te := ej.tokenError(resp.StatusCode)
		te.hide(secrets...)
		return nil, nil, te
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, responseError(resp, "")
	}
	return resp, body, nil
}

// call posts form to an endpoint of this server (post) and reads the
// answer, at most 1 MiB of it. A larger answer is a *ResponseError; it and
// a failed read are returned with resp.
func (c *Config) call(ctx context.Context, endpoint string, form url.Values) (*http.Response, []byte, error) {
	resp, err := c.post(ctx, endpoint, form)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return resp, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(body) > maxAnswer {
		return resp, nil, responseError(resp, "answer larger than 1 MiB")
	}
	return resp, body, nil
}

// AuthStyleNone is the Endpoint.AuthStyle of a public client
// (token_endpoint_auth_method "none", RFC 7591 §2): client_id in the body
// and no secret, not even one a Config or a stored credential carries.
const AuthStyleNone oauth2.AuthStyle = -1

// post sends an authenticated form POST to an endpoint of this server
// with the token endpoint's rules: no redirects, the Timeout, client
// authentication, Params.
func (c *Config) post(ctx context.Context, endpoint string, form url.Values) (*http.Response, error) {
	v := make(url.Values, len(form)+len(c.Params)+2)
	for k, vs := range form {
		v[k] = vs
	}
	c.AddParams(v)
	useHeader := c.Endpoint.AuthStyle == oauth2.AuthStyleInHeader ||
		(c.Endpoint.AuthStyle == oauth2.AuthStyleAutoDetect && c.ClientSecret != "")
	if !useHeader {
		v.Set("client_id", c.ClientID)
		if c.ClientSecret != "" && c.Endpoint.AuthStyle != AuthStyleNone {
			v.Set("client_secret", c.ClientSecret)
		}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = credential.DefaultTimeouts.Token
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(v.Encode()))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if useHeader {
		// RFC 6749 §2.3.1: form-encode, then Basic.
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	hc := http.Client{Transport: http.DefaultTransport, CheckRedirect: noRedirect}
	if c.HTTPClient != nil {
		if c.HTTPClient.Transport != nil {
			hc.Transport = c.HTTPClient.Transport
		}
		hc.Jar = c.HTTPClient.Jar
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is already known to the caller; keep messages short
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("connection closed before an answer: %w", err)
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// AddParams adds c.Params to v, keeping any value v already has.
func (c *Config) AddParams(v url.Values) {
	for k, vs := range c.Params {
		if _, ok := v[k]; !ok && k != "client_id" && k != "client_secret" {
			v[k] = append([]string(nil), vs...)
		}
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

// tokenJSON is the RFC 6749 §5.1 answer, with the common extensions.
type tokenJSON struct {
	AccessToken           string      `json:"access_token"`
	TokenType             string      `json:"token_type"`
	RefreshToken          string      `json:"refresh_token"`
	ExpiresIn             json.Number `json:"expires_in"`
	RefreshTokenExpiresIn json.Number `json:"refresh_token_expires_in"`
	RefreshExpiresIn      json.Number `json:"refresh_expires_in"` // Keycloak's name; 0 for offline tokens
	Scope                 string      `json:"scope"`
	IDToken               string      `json:"id_token"`
	// Scopes is Bitbucket Cloud's name for scope.
	Scopes string `json:"scopes"`
	// OK and AuthedUser are Slack's: every answer says ok, and a user
	// token comes under authed_user with token_type "user".
	OK         *bool      `json:"ok"`
	AuthedUser *tokenJSON `json:"authed_user"`
	errorJSON
}

// errorJSON is an error answer's fields (RFC 6749 §5.2, RFC 8628 §3.5).
type errorJSON struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorURI         string `json:"error_uri"`
}

// tokenError is e as a *TokenError from an answer with status.
func (e errorJSON) tokenError(status int) *TokenError {
	return &TokenError{Code: e.Error, Description: e.ErrorDescription, URI: e.ErrorURI, StatusCode: status}
}

func (c *Config) parseToken(resp *http.Response, body []byte) (*Token, error) {
	if isForm(resp.Header.Get("Content-Type")) {
		body = formAsJSON(body) // GitHub, without Accept: application/json
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if te := parseTokenError(resp.StatusCode, body); te != nil {
			return nil, te
		}
		return nil, responseError(resp, "")
	}
	if !isJSON(resp.Header.Get("Content-Type")) && !jsonobj.Looks(body) {
		return nil, responseError(resp, "answer is not JSON")
	}
	t, err := ParseTokenResponse(body, c.now())
	var m malformed
	switch {
	case errors.As(err, &m):
		return nil, responseError(resp, string(m))
	case err != nil:
		var te *TokenError
		if errors.As(err, &te) {
			te.StatusCode = resp.StatusCode
		}
		return nil, err
	}
	t.Issuer, t.ClientID = c.Issuer, c.ClientID
	return t, nil
}

// ParseTokenResponse parses a token answer (RFC 6749 §5.1) received at
// now, such as one pasted into a login. An error field yields a
// *TokenError (RFC 6749 §5.2). It fails, without quoting the body, when
// the body is not a JSON object, has no access_token, or has an
// expires_in that is negative or not a number.
func ParseTokenResponse(body []byte, now time.Time) (*Token, error) {
	var tj tokenJSON
	if !jsonobj.Looks(body) || json.Unmarshal(body, &tj) != nil {
		return nil, malformed("not valid JSON")
	}
	if tj.Error != "" {
		te := tj.tokenError(0)
		te.hide()
		return nil, te
	}
	slack := tj.OK != nil
	if tj.AccessToken == "" && slack && tj.AuthedUser != nil && tj.AuthedUser.AccessToken != "" {
		// Slack's oauth.v2.access for user scopes only: the user token.
		tj = *tj.AuthedUser
		slack = true
	}
	if tj.AccessToken == "" {
		return nil, malformed("no access_token")
	}
	if tj.Scope == "" {
		tj.Scope = tj.Scopes
	}
	// RFC 6749 §A.12, §A.17: VSCHAR. Anything else could split a header.
	if !vschars(tj.AccessToken) {
		return nil, malformed("access_token has characters outside RFC 6749 §A.12 (visible ASCII)")
	}
	if !vschars(tj.RefreshToken) {
		return nil, malformed("refresh_token has characters outside RFC 6749 §A.17 (visible ASCII)")
	}
	if !vschars(tj.Scope) {
		return nil, malformed("scope has characters outside RFC 6749 §3.3")
	}
	switch {
	case tj.TokenType == "", strings.EqualFold(tj.TokenType, "bearer"):
	case slack && (tj.TokenType == "user" || tj.TokenType == "bot"):
		// Slack names whose token it is; it is sent as a bearer token.
	default:
		return nil, &TokenTypeError{Type: tj.TokenType}
	}
	t := &Token{
		AccessToken:  tj.AccessToken,
		TokenType:    "Bearer",
		RefreshToken: tj.RefreshToken,
		Scope:        tj.Scope,
		IDToken:      tj.IDToken,
		IssuedAt:     now,
		Lineage:      storekit.NewLineage(),
	}
	exp, err := jsonobj.Seconds(tj.ExpiresIn, 10*365*24*time.Hour)
	if err != nil {
		return nil, malformed("expires_in " + err.Error())
	}
	if exp > 0 {
		t.Expiry = now.Add(exp)
	}
	if tj.RefreshTokenExpiresIn == "" {
		tj.RefreshTokenExpiresIn = tj.RefreshExpiresIn
	}
	rexp, err := jsonobj.Seconds(tj.RefreshTokenExpiresIn, 10*365*24*time.Hour)
	if err != nil {
		return nil, malformed("refresh_token_expires_in " + err.Error())
	}
	if rexp > 0 {
		t.RefreshExpiry = now.Add(rexp)
	}
	return t, nil
}

// vschars reports whether s holds only %x20-7E (RFC 6749 Appendix A).
func vschars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TokenTypeError is a token answer whose token_type latch cannot use
// (RFC 6749 §7.1). Latch sends bearer tokens only (RFC 6750): a DPoP-bound
// token (RFC 9449) needs a proof with every request, and sent without one
// it would be refused, or leak a token bound to a key latch does not hold.
type TokenTypeError struct{ Type string }

func (e *TokenTypeError) Error() string {
	return fmt.Sprintf("token_type %q is not supported: this client sends Bearer tokens only (RFC 6750); "+
		"ask the server's administrator for a client that is issued Bearer tokens", redact.Tokens(e.Type[:min(len(e.Type), 64)]))
}

// malformed says what is wrong with a token answer.
type malformed string

func (m malformed) Error() string { return string(m) }

// parseTokenError returns the RFC 6749 §5.2 error in body, or nil.
func parseTokenError(status int, body []byte) *TokenError {
	var tj tokenJSON
	if !jsonobj.Looks(body) || json.Unmarshal(body, &tj) != nil || tj.Error == "" {
		return nil
	}
	return tj.tokenError(status)
}

func responseError(resp *http.Response, reason string) *ResponseError {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	e := &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if at, err := http.ParseTime(ra); err == nil {
			if d := time.Until(at); d > 0 {
				e.RetryAfter = d
			}
		}
	}
	return e
}

func isForm(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/x-www-form-urlencoded"
}

// formAsJSON turns a form-encoded token answer (RFC 6749 Appendix B
// encoding, as GitHub sends it) into the JSON object of RFC 6749 §5.1.
// A body that is not a form becomes one that fails to parse.
func formAsJSON(body []byte) []byte {
	v, err := url.ParseQuery(string(body))
	if err != nil || len(v) == 0 {
		return nil
	}
	m := make(map[string]any, len(v))
	for k := range v {
		val := v.Get(k)
		switch k {
		case "expires_in", "refresh_token_expires_in":
			m[k] = json.Number(val)
			if _, err := strconv.ParseFloat(val, 64); err != nil {
				m[k] = val // not a number: ParseTokenResponse says so
			}
		default:
			m[k] = val
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func isJSON(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
