// Package device runs the OAuth 2.0 device authorization grant (RFC 8628)
// for machines without a usable browser.
package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// GrantType is the device code grant type (RFC 8628 §3.4).
const GrantType = "urn:ietf:params:oauth:grant-type:device_code"

// Defaults and bounds for polling.
const (
	DefaultInterval  = 5 * time.Second  // RFC 8628 §3.2
	SlowDownStep     = 5 * time.Second  // RFC 8628 §3.5
	DefaultExpiresIn = 15 * time.Minute // when the server omits expires_in
	MaxBackoff       = time.Minute      // cap for backoff after transient errors
)

// Sentinels for the outcomes a caller branches on. Use errors.Is.
var (
	// ErrAccessDenied: the person denied the request (RFC 8628 §3.5).
	ErrAccessDenied = errors.New("device authorization denied by the user")
	// ErrExpired: the device code expired before the person approved it
	// (RFC 8628 §3.5 expired_token, or its expires_in passed).
	ErrExpired = errors.New("device code expired before approval")
)

// Code is a device authorization response (RFC 8628 §3.2). DeviceCode is a
// secret: it is left out of String, GoString and JSON.
type Code struct {
	DeviceCode              string        `json:"-"`
	UserCode                string        `json:"user_code"`
	VerificationURI         string        `json:"verification_uri"`
	VerificationURIComplete string        `json:"verification_uri_complete,omitempty"`
	ExpiresIn               time.Duration `json:"expires_in"`
	Expiry                  time.Time     `json:"expiry"`
	Interval                time.Duration `json:"interval"`
}

// String describes c without its device code.
func (c Code) String() string {
	return fmt.Sprintf("device.Code{UserCode:%q VerificationURI:%q VerificationURIComplete:%q Expiry:%s Interval:%s}",
		c.UserCode, c.VerificationURI, c.VerificationURIComplete, c.Expiry.Format(time.RFC3339), c.Interval)
}

// GoString is String, so that %#v does not print the device code either.
func (c Code) GoString() string { return c.String() }

// codeJSON is the RFC 8628 §3.2 answer.
type codeJSON struct {
	DeviceCode              string      `json:"device_code"`
	UserCode                string      `json:"user_code"`
	VerificationURI         string      `json:"verification_uri"`
	VerificationURL         string      `json:"verification_url"` // Google's spelling
	VerificationURIComplete string      `json:"verification_uri_complete"`
	ExpiresIn               json.Number `json:"expires_in"`
	Interval                json.Number `json:"interval"`
	Error                   string      `json:"error"`
	ErrorDescription        string      `json:"error_description"`
	ErrorURI                string      `json:"error_uri"`
}

// Start asks cfg's device authorization endpoint for a device and user
// code (RFC 8628 §3.1, §3.2). An error answer is a *latch.TokenError; an
// answer that is not JSON is a *latch.ResponseError.
func Start(ctx context.Context, cfg *latch.Config) (*Code, error) {
	if cfg == nil || cfg.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("start device authorization: no device authorization endpoint configured")
	}
	form := url.Values{"client_id": {cfg.ClientID}}
	if len(cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	resp, err := cfg.PostForm(ctx, cfg.Endpoint.DeviceAuthURL, form)
	if err != nil {
		return nil, fmt.Errorf("start device authorization: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, latch.MaxTokenResponse+1))
	if err != nil {
		return nil, fmt.Errorf("start device authorization: read answer: %w", err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	bad := func(reason string) error {
		return fmt.Errorf("start device authorization: %w", &latch.ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason})
	}
	if len(body) > latch.MaxTokenResponse {
		return nil, bad("answer larger than 1 MiB")
	}
	var cj codeJSON
	if err := json.Unmarshal(body, &cj); err != nil {
		if resp.StatusCode/100 != 2 {
			return nil, bad("")
		}
		return nil, bad("answer is not valid JSON")
	}
	if cj.Error != "" {
		te := &latch.TokenError{Code: cj.Error, Description: cj.ErrorDescription, URI: cj.ErrorURI, StatusCode: resp.StatusCode}
		return nil, fmt.Errorf("start device authorization: %w", scrub(te, cj.DeviceCode))
	}
	if resp.StatusCode/100 != 2 {
		return nil, bad("")
	}
	if cj.VerificationURI == "" {
		cj.VerificationURI = cj.VerificationURL
	}
	for _, f := range []struct{ name, v string }{
		{"device_code", cj.DeviceCode},
		{"user_code", cj.UserCode},
		{"verification_uri", cj.VerificationURI},
	} {
		if f.v == "" {
			return nil, bad("answer has no " + f.name)
		}
	}
	expiresIn, err := seconds(cj.ExpiresIn, DefaultExpiresIn)
	if err != nil {
		return nil, bad("expires_in " + err.Error())
	}
	interval, err := seconds(cj.Interval, DefaultInterval)
	if err != nil {
		return nil, bad("interval " + err.Error())
	}
	return &Code{
		DeviceCode:              cj.DeviceCode,
		UserCode:                cj.UserCode,
		VerificationURI:         cj.VerificationURI,
		VerificationURIComplete: cj.VerificationURIComplete,
		ExpiresIn:               expiresIn,
		Expiry:                  now(cfg).Add(expiresIn),
		Interval:                interval,
	}, nil
}

// seconds parses a JSON number of seconds; absent or 0 gives def.
func seconds(n json.Number, def time.Duration) (time.Duration, error) {
	if n == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	switch {
	case err != nil:
		return 0, errors.New("is not a number")
	case f < 0:
		return 0, errors.New("is negative")
	case f == 0:
		return def, nil
	case f > 24*3600:
		f = 24 * 3600
	}
	return time.Duration(f * float64(time.Second)), nil
}

func now(cfg *latch.Config) time.Time {
	if cfg.Now != nil {
		return cfg.Now()
	}
	return time.Now()
}

// Poller polls a token endpoint for a device code (RFC 8628 §3.4, §3.5).
// The zero value is ready to use.
type Poller struct {
	// Sleep waits d or until ctx is done, returning ctx's error then.
	// Nil means a real timer. Tests pass a fake that advances cfg.Now.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Poll is (&Poller{}).Poll.
func Poll(ctx context.Context, cfg *latch.Config, code *Code) (*latch.Token, error) {
	return (&Poller{}).Poll(ctx, cfg, code)
}

// Poll waits Interval between token requests until the person approves
// or denies the request or the code expires (RFC 8628 §3.4, §3.5).
// authorization_pending keeps polling; slow_down adds 5 seconds to the
// interval for good; access_denied is ErrAccessDenied; expired_token, or
// reaching code.Expiry, is ErrExpired. A network error, a 429 or 5xx, a
// body that is not JSON or a server_error/temporarily_unavailable code
// keeps polling, backing off up to MaxBackoff. Other errors end the poll.
// Errors never contain the device code.
func (p *Poller) Poll(ctx context.Context, cfg *latch.Config, code *Code) (*latch.Token, error) {
	if cfg == nil || code == nil || code.DeviceCode == "" {
		return nil, errors.New("poll device authorization: no device code")
	}
	interval := code.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	form := url.Values{
		"grant_type":  {GrantType},
		"device_code": {code.DeviceCode},
		"client_id":   {cfg.ClientID},
	}
	wait := interval
	var lastErr error // last transient error, for the expiry message
	for {
		if !code.Expiry.IsZero() && !now(cfg).Before(code.Expiry) {
			if lastErr != nil {
				return nil, fmt.Errorf("poll device authorization: %w; last error: %w", ErrExpired, lastErr)
			}
			return nil, fmt.Errorf("poll device authorization: %w", ErrExpired)
		}
		if !code.Expiry.IsZero() {
			// Wake for the expiry rather than sleep past it.
			if left := code.Expiry.Sub(now(cfg)); left < wait {
				wait = left
			}
		}
		if err := p.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("poll device authorization: %w", err)
		}
		if !code.Expiry.IsZero() && !now(cfg).Before(code.Expiry) {
			continue // report the expiry without another request
		}
		tok, err := cfg.Grant(ctx, form)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("poll device authorization: %w", ctx.Err())
		}
		err = scrub(err, code.DeviceCode)
		var te *latch.TokenError
		if errors.As(err, &te) {
			switch te.Code {
			case "authorization_pending":
				wait, lastErr = interval, nil
				continue
			case "slow_down":
				interval += SlowDownStep
				wait, lastErr = interval, nil
				continue
			case "access_denied":
				return nil, fmt.Errorf("poll device authorization: %w: %w", ErrAccessDenied, err)
			case "expired_token":
				return nil, fmt.Errorf("poll device authorization: %w: %w", ErrExpired, err)
			}
		}
		if !transient(err) {
			return nil, fmt.Errorf("poll device authorization: %w", err)
		}
		lastErr = err
		wait = min(max(2*wait, interval), MaxBackoff)
		var re *latch.ResponseError
		if errors.As(err, &re) && re.RetryAfter > wait {
			wait = min(re.RetryAfter, 5*MaxBackoff)
		}
	}
}

func (p *Poller) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transient reports whether polling should go on after err: network
// errors, per-request timeouts, answers that are not RFC 6749 answers
// (HTML, 5xx without JSON) and temporary server error codes.
func transient(err error) bool {
	var te *latch.TokenError
	if errors.As(err, &te) {
		return te.Code == "server_error" || te.Code == "temporarily_unavailable" ||
			te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500
	}
	var re *latch.ResponseError
	if errors.As(err, &re) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// scrub returns err with the device code cut out of a server-supplied
// *latch.TokenError, in case the server echoed it.
func scrub(err error, deviceCode string) error {
	var te *latch.TokenError
	if deviceCode == "" || !errors.As(err, &te) || !strings.Contains(te.Description+te.URI+te.Code, deviceCode) {
		return err
	}
	c := *te
	c.Code = strings.ReplaceAll(c.Code, deviceCode, "[device_code]")
	c.Description = strings.ReplaceAll(c.Description, deviceCode, "[device_code]")
	c.URI = strings.ReplaceAll(c.URI, deviceCode, "[device_code]")
	return &c
}
