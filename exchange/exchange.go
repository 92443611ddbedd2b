// Package exchange is OAuth 2.0 Token Exchange (RFC 8693) over a
// latch.Config: a workload trades a token it was given — a CI job's
// OIDC token, a Kubernetes service-account token — for an access token
// of the API. The answer has no refresh token: a latch.Source renews it
// with Regrant, reading the subject token again each time.
package exchange

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
)

// GrantType is the token exchange grant type (RFC 8693 §2.1).
const GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 §3).
const (
	AccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	RefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	IDToken      = "urn:ietf:params:oauth:token-type:id_token"
	JWT          = "urn:ietf:params:oauth:token-type:jwt"
)

// MaxSubjectToken is the largest subject token ReadFile and
// GitHubActions accept: tokens are a few KiB, and a file far larger is
// not one.
const MaxSubjectToken = 64 << 10

// Request is a token exchange request (RFC 8693 §2.1). The subject and
// actor tokens are secrets: String leaves them out.
type Request struct {
	SubjectToken     string
	SubjectTokenType string // required; JWT when empty
	ActorToken       string
	ActorTokenType   string
	// RequestedTokenType is empty (the server's default) or AccessToken.
	RequestedTokenType string
	Audience           []string // RFC 8693 §2.1 audience
	Resource           []string // RFC 8707 §2
}

// String describes r without its tokens.
func (r Request) String() string {
	return fmt.Sprintf("exchange.Request{SubjectTokenType:%q Actor:%t Audience:%q Resource:%q}",
		r.SubjectTokenType, r.ActorToken != "", r.Audience, r.Resource)
}

// GoString is String, so that %#v shows no token either.
func (r Request) GoString() string { return r.String() }

// Token exchanges r's subject token at c's token endpoint (RFC 8693
// §2.1), with c's Scopes, Params and client authentication (a public
// client sends its client_id). An answer whose token_type is not Bearer
// (RFC 8693 §2.2.1 "N_A" for a token that is no access token) is a
// *latch.TokenTypeError: only an access token can be sent to an API.
// Errors are latch.Config.Grant's and never contain the tokens.
func Token(ctx context.Context, c *latch.Config, r Request) (*latch.Token, error) {
	if r.SubjectToken == "" {
		return nil, errors.New("token exchange: no subject token")
	}
	typ := r.SubjectTokenType
	if typ == "" {
		typ = JWT
	}
	if r.RequestedTokenType != "" && r.RequestedTokenType != AccessToken {
		return nil, fmt.Errorf("token exchange: requested_token_type %q: only %s can be sent to an API", r.RequestedTokenType, AccessToken)
	}
	form := url.Values{"grant_type": {GrantType}, "subject_token": {r.SubjectToken}, "subject_token_type": {typ}}
	if r.ActorToken != "" {
		form.Set("actor_token", r.ActorToken)
		at := r.ActorTokenType
		if at == "" {
			at = JWT
		}
		form.Set("actor_token_type", at)
	}
	if r.RequestedTokenType != "" {
		form.Set("requested_token_type", r.RequestedTokenType)
	}
	for _, a := range r.Audience {
		form.Add("audience", a)
	}
	for _, res := range r.Resource {
		form.Add("resource", res)
	}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	t, err := c.Grant(ctx, form)
	if err != nil {
		return nil, fmt.Errorf("token exchange: %w", err)
	}
	return t, nil
}

// ReadFile reads a subject token from path, as a Kubernetes projected
// service-account token or a CI system writes it: trimmed of white
// space, refused when missing, empty, larger than MaxSubjectToken, or a
// JWT whose exp has passed at now. It is read anew for every exchange,
// so a token the kubelet rotated is picked up. Errors name the path,
// never the content.
func ReadFile(path string, now time.Time) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("subject token file %s does not exist", path)
	}
	if err != nil {
		return "", fmt.Errorf("subject token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSubjectToken+1))
	if err != nil {
		return "", fmt.Errorf("subject token file %s: %w", path, err)
	}
	if len(b) > MaxSubjectToken {
		return "", fmt.Errorf("subject token file %s is larger than %d KiB: not a token", path, MaxSubjectToken>>10)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("subject token file %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("subject token file %s holds more than one line: not a token", path)
	}
	if exp, ok := Expiry(tok); ok && !now.Before(exp) {
		return "", fmt.Errorf("the subject token in %s expired at %s; whatever writes it has stopped renewing it", path, exp.UTC().Format(time.RFC3339))
	}
	return tok, nil
}

// Expiry returns the exp claim of a JWT (RFC 7519 §4.1.4), without
// checking its signature: it only tells whether sending it is pointless.
func Expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	f, err := c.Exp.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// GitHubActions fetches a GitHub Actions job's OIDC token for audience
// from the runner: GET requestURL (ACTIONS_ID_TOKEN_REQUEST_URL) with
// the bearer requestToken (ACTIONS_ID_TOKEN_REQUEST_TOKEN); the job needs
// `permissions: id-token: write`. hc nil means http.DefaultClient; it
// follows no redirect. Errors never contain either token.
func GitHubActions(ctx context.Context, hc *http.Client, requestURL, requestToken, audience string) (string, error) {
	if requestURL == "" || requestToken == "" {
		return "", errors.New("no GitHub Actions OIDC request URL and token: give the job `permissions: id-token: write`")
	}
	u, err := url.Parse(requestURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !discovery.IsLoopback(u.Hostname())) {
		return "", errors.New("the GitHub Actions OIDC request URL is not an https URL")
	}
	if audience != "" {
		q := u.Query()
		q.Set("audience", audience)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("GitHub Actions OIDC token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+requestToken)
	req.Header.Set("Accept", "application/json")
	c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if hc != nil {
		c.Transport, c.Timeout = hc.Transport, hc.Timeout
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries nothing secret, but keep it short
		}
		return "", fmt.Errorf("GitHub Actions OIDC token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSubjectToken+1))
	if err != nil {
		return "", fmt.Errorf("GitHub Actions OIDC token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &RunnerError{StatusCode: resp.StatusCode}
	}
	var v struct {
		Value string `json:"value"`
	}
	if len(body) > MaxSubjectToken || json.Unmarshal(body, &v) != nil || v.Value == "" || strings.ContainsAny(v.Value, " \t\r\n") {
		return "", errors.New("GitHub Actions OIDC token: the runner's answer holds no token")
	}
	return v.Value, nil
}

// RunnerError is a GitHub Actions runner's answer other than 200: 401
// or 403 when the job may not ask (no `id-token: write`), 429 or 5xx
// when asking again later may work.
type RunnerError struct{ StatusCode int }

func (e *RunnerError) Error() string {
	return fmt.Sprintf("GitHub Actions OIDC token: the runner answered HTTP %d", e.StatusCode)
}
