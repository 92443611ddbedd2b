package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/device"
	"github.com/latchdev/latch/internal/redact"
)

// deviceLogin runs the device authorization grant (RFC 8628 §3.1–3.5):
// it shows the user code and verification URL, then polls
// (device.AccessToken handles authorization_pending and slow_down).
func (a *App) deviceLogin(ctx context.Context, cfg *latch.Config, timeout time.Duration) (*latch.Token, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, usageError(errors.New("device login: the server has no device_authorization_endpoint; pass --device-url if it has one, or run `latch auth login` without --device"))
	}
	code, err := device.Auth(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("device login: %w", err)
	}
	fmt.Fprintf(a.Stderr, "First copy your one-time code: %s\nThen open: %s\n", code.UserCode, code.VerificationURI)
	if code.VerificationURIComplete != "" {
		fmt.Fprintf(a.Stderr, "Or open this URL, which carries the code: %s\n", code.VerificationURIComplete)
	}
	fmt.Fprintf(a.Stderr, "Waiting for approval (code expires %s)...\n", when(code.Expiry, time.Now()))
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tok, err := device.AccessToken(wctx, cfg, code)
	switch {
	case errors.Is(err, device.ErrDenied):
		// An explicit "no", as in the browser flow: exit 1, one line.
		msg := "device login: " + device.ErrDenied.Error()
		var te *latch.TokenError
		if errors.As(err, &te) && te.Description != "" {
			msg += ": " + redact.Server(te.Description)
		}
		return nil, &ExitError{Code: ExitAPI, Err: errors.New(msg)}
	case errors.Is(err, device.ErrExpired):
		return nil, fmt.Errorf("device login: %w; run `latch auth login --device` again", err)
	case err != nil && ctx.Err() == nil && wctx.Err() != nil:
		return nil, fmt.Errorf("device login: no approval within %s", timeout)
	case err != nil:
		return nil, fmt.Errorf("device login: %w", err)
	}
	return tok, nil
}
