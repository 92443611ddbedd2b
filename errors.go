package latch

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/internal/redact"
)

// Sentinels for the states a caller branches on. Use errors.Is.
// The store's and the lock's sentinels are credential's, so a store
// built on that package alone returns the same errors.
var (
	// ErrNotFound: the store holds no credential for the key.
	ErrNotFound = credential.ErrNotFound
	// ErrLoginRequired: the grant is dead or missing; the user must log in again.
	ErrLoginRequired = errors.New("login required")
	// ErrLockTimeout: another process held the refresh lock past the bound.
	ErrLockTimeout = credential.ErrLockTimeout
	// ErrStoreReadOnly: the store can be read but not written, so a refresh
	// token must not be spent (its replacement could not be kept).
	ErrStoreReadOnly = credential.ErrStoreReadOnly
	// ErrStoreUnavailable: the store cannot be reached at all.
	ErrStoreUnavailable = credential.ErrStoreUnavailable
	// ErrUnusable: the stored credential cannot be used until a person
	// fixes it; retrying cannot help (see credential.ErrUnusable).
	ErrUnusable = credential.ErrUnusable
	// ErrConflict: a compare-and-swap Save or Delete found another set
	// than the one the write was derived from; nothing was written.
	ErrConflict = credential.ErrConflict
	// ErrNoLocker: a Source's Store has no Locker, so refreshes could not
	// be serialised across processes.
	ErrNoLocker = credential.ErrNoLocker
	// ErrBodyNotReplayable: a request met a 401 but its body could not be
	// sent again. The token was refreshed; the caller may retry.
	ErrBodyNotReplayable = errors.New("request body cannot be replayed after 401")
)

// TokenError is an error answer from a token endpoint (RFC 6749 §5.2), or
// from the device authorization endpoint (RFC 8628 §3.5).
type TokenError struct {
	Code        string // "error"
	Description string // "error_description"
	URI         string // "error_uri"
	StatusCode  int    // HTTP status of the answer
}

// hide makes the server's text fit to show: the given secrets of the
// request, token-shaped words and control characters are replaced
// (a server may quote the refresh token it refused).
func (e *TokenError) hide(secrets ...string) {
	e.Code = redact.Server(e.Code, secrets...)
	e.Description = redact.Server(e.Description, secrets...)
	e.URI = redact.Server(e.URI, secrets...)
}

// Error renders e with the server's text made fit to show (redact.Server),
// however e was made.
func (e *TokenError) Error() string {
	s := "oauth2: " + redact.Server(e.Code)
	if e.Description != "" {
		s += ": " + redact.Server(e.Description)
	}
	if e.StatusCode != 0 && e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusOK {
		s += " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
	}
	return s
}

func (e *TokenError) terminal() bool {
	switch e.Code {
	case "invalid_grant", "invalid_client", "unauthorized_client",
		"bad_refresh_token", "incorrect_client_credentials",
		"invalid_refresh_token", "invalid_client_id", "bad_client_secret":
		return true
	}
	return false
}

// ResponseError is a token-endpoint answer that is not a valid RFC 6749
// answer: a non-2xx status without a JSON error, an HTML page, or a body
// that does not parse. It is always transient. Its message never quotes
// the body.
type ResponseError struct {
	StatusCode  int
	ContentType string
	RetryAfter  time.Duration // from Retry-After, if any
	Reason      string        // what was wrong, e.g. "not JSON"
}

func (e *ResponseError) Error() string {
	s := "token endpoint answered HTTP " + strconv.Itoa(e.StatusCode)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.ContentType != "" {
		s += " (" + e.ContentType + ")"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %s", e.RetryAfter)
	}
	return s
}

func (e *TokenError) needsInteraction() bool {
	switch e.Code {
	case "interaction_required", "login_required", "consent_required", "account_selection_required":
		return true
	}
	return false
}

// IsTerminal reports whether err means the grant itself is dead: a
// *TokenError with invalid_grant, invalid_client or unauthorized_client
// (RFC 6749 §5.2), or the names two providers answer with status 200
// instead: GitHub's bad_refresh_token and incorrect_client_credentials,
// Slack's invalid_refresh_token, invalid_client_id and bad_client_secret.
// Network errors, timeouts, 408/429/5xx and malformed bodies are
// transient. It is the one way to ask.
func IsTerminal(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.terminal()
}

// NeedsInteraction reports whether err is a *TokenError for which the
// server wants the user at a browser before it issues tokens again:
// interaction_required, login_required, consent_required or
// account_selection_required (OIDC Core §3.1.2.6), as Entra ID answers a
// refresh that Conditional Access or MFA blocks. The grant is not dead:
// the refresh token may work again once the user has satisfied the
// server, so it is kept.
func NeedsInteraction(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.needsInteraction()
}

// LoginRequiredError says the user must log in again and how. It matches
// ErrLoginRequired with errors.Is.
type LoginRequiredError struct {
	Key  Key
	Hint string // e.g. "run `latch auth login`"
	Err  error  // why, e.g. a terminal *TokenError; may be nil
}

func (e *LoginRequiredError) Error() string {
	s := "login required"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *LoginRequiredError) Unwrap() []error { return []error{ErrLoginRequired, e.Err} }
