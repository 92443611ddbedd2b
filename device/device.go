// Package device is the device authorization grant (RFC 8628): a login
// for a program that has no browser beside it, as x/oauth2's DeviceAuth
// and DeviceAccessToken are, over a latch.Config.
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
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/hostile"
	"github.com/latchdev/latch/internal/jsonobj"
)

// GrantType is the device code grant type (RFC 8628 §3.4).
const GrantType = "urn:ietf:params:oauth:grant-type:device_code"

// Polling defaults and bounds of the device grant.
const (
	deviceInterval  = 5 * time.Second  // RFC 8628 §3.2
	slowDownStep    = 5 * time.Second  // RFC 8628 §3.5
	deviceExpiresIn = 15 * time.Minute // when the server omits expires_in
	maxPollBackoff  = time.Minute      // after transient errors
)

// Outcomes of the device grant a caller branches on. Use errors.Is.
var (
	// ErrDenied: the person denied the request (RFC 8628 §3.5).
	ErrDenied = errors.New("device authorization denied by the user")
	// ErrExpired: the device code expired before the person approved
	// it (RFC 8628 §3.5 expired_token, or its expires_in passed).
	ErrExpired = errors.New("device code expired before approval")
)

// AuthResponse is a device authorization response (RFC 8628 §3.2).
// DeviceCode is a secret: it is left out of String, GoString and JSON.
type AuthResponse struct {
	DeviceCode              string        `json:"-"`
	UserCode                string        `json:"user_code"`
	VerificationURI         string        `json:"verification_uri"`
	VerificationURIComplete string        `json:"verification_uri_complete,omitempty"`
	ExpiresIn               time.Duration `json:"expires_in"`
	Expiry                  time.Time     `json:"expiry"`
	Interval                time.Duration `json:"interval"`
}

// String describes d without its device code.
func (d AuthResponse) String() string {
	return fmt.Sprintf("device.AuthResponse{UserCode:%q VerificationURI:%q VerificationURIComplete:%q Expiry:%s Interval:%s}",
		d.UserCode, d.VerificationURI, d.VerificationURIComplete, d.Expiry.Format(time.RFC3339), d.Interval)
}

// GoString is String, so that %#v does not print the device code either.
func (d AuthResponse) GoString() string { return d.String() }

// deviceJSON is the RFC 8628 §3.2 answer.
type deviceJSON struct {
	DeviceCode              string      `json:"device_code"`
	UserCode                string      `json:"user_code"`
	VerificationURI         string      `json:"verification_uri"`
	VerificationURL         string      `json:"verification_url"` // Google's spelling
	VerificationURIComplete string      `json:"verification_uri_complete"`
	ExpiresIn               json.Number `json:"expires_in"`
	Interval                json.Number `json:"interval"`
}

// Auth asks c's device authorization endpoint for a device and a user
// code (RFC 8628 §3.1, §3.2), with the token endpoint's rules (no
// redirects, Timeout, client authentication; latch.Config.Post). An error
// answer is a *latch.TokenError; an answer that is not JSON is a
// *latch.ResponseError.
func Auth(ctx context.Context, c *latch.Config) (*AuthResponse, error) {
	d, err := auth(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("start device authorization: %w", err)
	}
	return d, nil
}

func auth(ctx context.Context, c *latch.Config) (*AuthResponse, error) {
	if c.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("no device authorization endpoint configured")
	}
	form := url.Values{"client_id": {c.ClientID}}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	resp, body, err := c.Post(ctx, c.Endpoint.DeviceAuthURL, form, "device_code")
	if err != nil {
		return nil, err
	}
	var dj deviceJSON
	if json.Unmarshal(body, &dj) != nil {
		return nil, responseError(resp, "answer is not valid JSON")
	}
	if dj.VerificationURI == "" {
		dj.VerificationURI = dj.VerificationURL
	}
	for _, f := range []struct{ name, v string }{
		{"device_code", dj.DeviceCode},
		{"user_code", dj.UserCode},
		{"verification_uri", dj.VerificationURI},
	} {
		if f.v == "" {
			return nil, responseError(resp, "answer has no "+f.name)
		}
	}
	// The user code and the URIs are printed for a person to act on: the
	// server chose them, so they are checked (RFC 8628 §3.2, §6.1).
	if err := checkDeviceAnswer(&dj); err != nil {
		return nil, fmt.Errorf("device authorization at %s: %w", c.Endpoint.DeviceAuthURL, err)
	}
	expiresIn, err := jsonobj.Seconds(dj.ExpiresIn, 24*time.Hour)
	if err != nil {
		return nil, responseError(resp, "expires_in "+err.Error())
	}
	interval, err := jsonobj.Seconds(dj.Interval, 24*time.Hour)
	if err != nil {
		return nil, responseError(resp, "interval "+err.Error())
	}
	expiresIn = orDefault(expiresIn, deviceExpiresIn)
	return &AuthResponse{
		DeviceCode:              dj.DeviceCode,
		UserCode:                dj.UserCode,
		VerificationURI:         dj.VerificationURI,
		VerificationURIComplete: dj.VerificationURIComplete,
		ExpiresIn:               expiresIn,
		Expiry:                  now(c).Add(expiresIn),
		Interval:                orDefault(interval, deviceInterval),
	}, nil
}

// checkDeviceAnswer refuses a user code that is not short and printable
// and verification URIs that are not absolute http(s) URLs (https off
// loopback).
func checkDeviceAnswer(dj *deviceJSON) error {
	if err := hostile.Check("user_code", dj.UserCode, hostile.MaxUserCode); err != nil {
		return err
	}
	if err := hostile.URL("verification_uri", dj.VerificationURI); err != nil {
		return err
	}
	if dj.VerificationURIComplete != "" {
		return hostile.URL("verification_uri_complete", dj.VerificationURIComplete)
	}
	return nil
}

// orDefault returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// AccessToken polls c's token endpoint for da's device code until
// the person approves or denies it or the code expires (RFC 8628 §3.4,
// §3.5). authorization_pending keeps polling; slow_down adds 5 seconds to
// the interval for good; access_denied is ErrDenied; expired_token,
// or reaching da.Expiry, is ErrExpired. A network error, a 429 or
// 5xx, an answer that is not JSON or a server_error or
// temporarily_unavailable code keeps polling, backing off up to a minute.
// Other errors end the poll. Errors never contain the device code.
func AccessToken(ctx context.Context, c *latch.Config, da *AuthResponse) (*latch.Token, error) {
	return poll(ctx, c, da, sleep)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// devicePoll is the state of one device grant's polling.
type devicePoll struct {
	interval time.Duration // grows by slowDownStep on slow_down
	wait     time.Duration // until the next poll
	lastErr  error         // the last transient error, for the expiry message
}

func poll(ctx context.Context, c *latch.Config, da *AuthResponse, sleep func(context.Context, time.Duration) error) (*latch.Token, error) {
	if da == nil || da.DeviceCode == "" {
		return nil, errors.New("poll device authorization: no device code")
	}
	p := &devicePoll{interval: orDefault(max(da.Interval, 0), deviceInterval)}
	p.wait = p.interval
	form := url.Values{"grant_type": {GrantType}, "device_code": {da.DeviceCode}, "client_id": {c.ClientID}}
	for {
		if expired := untilExpiry(c, da, p); expired {
			if p.lastErr != nil {
				return nil, fmt.Errorf("poll device authorization: %w; last error: %w", ErrExpired, p.lastErr)
			}
			return nil, fmt.Errorf("poll device authorization: %w", ErrExpired)
		}
		if err := sleep(ctx, p.wait); err != nil {
			return nil, fmt.Errorf("poll device authorization: %w", err)
		}
		if !da.Expiry.IsZero() && !now(c).Before(da.Expiry) {
			continue // report the expiry without another request
		}
		tok, err := c.Grant(ctx, form)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("poll device authorization: %w", ctx.Err())
		}
		if err := p.next(err); err != nil {
			return nil, fmt.Errorf("poll device authorization: %w", err)
		}
	}
}

// untilExpiry shortens the wait so that the poll wakes for da's expiry
// rather than sleeping past it, and reports whether it has passed.
func untilExpiry(c *latch.Config, da *AuthResponse, p *devicePoll) (expired bool) {
	if da.Expiry.IsZero() {
		return false
	}
	left := da.Expiry.Sub(now(c))
	p.wait = min(p.wait, left)
	return left <= 0
}

// next decides what a failed poll means (RFC 8628 §3.5): nil to poll
// again after p.wait, or the error that ends the poll.
func (p *devicePoll) next(err error) error {
	var te *latch.TokenError
	if errors.As(err, &te) {
		switch te.Code {
		case "authorization_pending":
			p.wait, p.lastErr = p.interval, nil
			return nil
		case "slow_down":
			p.interval += slowDownStep
			p.wait, p.lastErr = p.interval, nil
			return nil
		case "access_denied":
			return fmt.Errorf("%w: %w", ErrDenied, err)
		case "expired_token":
			return fmt.Errorf("%w: %w", ErrExpired, err)
		}
	}
	if !pollAgain(err) {
		return err
	}
	p.lastErr = err
	p.wait = min(max(2*p.wait, p.interval), maxPollBackoff)
	var re *latch.ResponseError
	if errors.As(err, &re) && re.RetryAfter > p.wait {
		p.wait = min(re.RetryAfter, 5*maxPollBackoff)
	}
	return nil
}

// pollAgain reports whether polling should go on after err: network
// errors, per-request timeouts, answers that are not RFC 6749 answers
// (HTML, 5xx without JSON) and temporary server error codes.
func pollAgain(err error) bool {
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

func now(c *latch.Config) time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// responseError is a 2xx answer that is not a device authorization
// response.
func responseError(resp *http.Response, reason string) *latch.ResponseError {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return &latch.ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason}
}
