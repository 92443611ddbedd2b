package cli

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/fleet"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/hostile"
	"github.com/latchdev/latch/keyring"
)

// Exit codes, documented in the README.
const (
	ExitOK        = 0
	ExitAPI       = 1 // API or HTTP error
	ExitUsage     = 2
	ExitAuth      = 4 // authentication required
	ExitTransient = 5 // transient failure; the credential was kept
	// ExitInterrupted: Ctrl-C or SIGTERM ended the command (128 + SIGINT,
	// as a shell reports it).
	ExitInterrupted = 130
)

// ExitError carries an explicit exit code. Silent means the message was
// already shown (for example an HTTP error body printed by `api`).
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit status"
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageErrorf marks a usage error (exit 2).
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// exitCode maps an error to the process exit code. It is the only place
// that does so.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	if errors.Is(err, latch.ErrLoginRequired) || errors.Is(err, latch.ErrNotFound) {
		return ExitAuth
	}
	// A person must fix something here; trying again cannot help.
	var ce *config.Error
	var ue *credstore.UnavailableError
	var he *hostile.Error   // a server's value latch refused to print or store
	var ae *fleet.AuthError // a fleet store refused its password
	if errors.Is(err, latch.ErrUnusable) || errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ae) || keyringMissing(err) {
		return ExitUsage
	}
	var te *latch.TokenError
	var re *latch.ResponseError
	var ne net.Error
	switch {
	case errors.As(err, &te) && !latch.IsTerminal(err),
		errors.As(err, &re),
		errors.As(err, &ne),
		// A connection closed mid-answer is a network failure too.
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, latch.ErrLockTimeout),
		errors.Is(err, latch.ErrStoreReadOnly),
		errors.Is(err, latch.ErrStoreUnavailable):
		return ExitTransient
	}
	return ExitAPI
}

// keyringMissing reports a keyring that is not there (no session bus, no
// Secret Service, no unlocked collection): a person must set one up or
// choose another store, and trying again cannot help. A keyring that
// timed out is transient.
func keyringMissing(err error) bool {
	var ke *keyring.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Reason {
	case keyring.ReasonNoBus, keyring.ReasonNoSecretService, keyring.ReasonLocked:
		return true
	}
	return false
}
