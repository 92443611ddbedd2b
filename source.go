package latch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/latchdev/latch/credential"
)

// DefaultSkew is how long before expiry a Source refreshes when Skew is 0.
// It is capped at a quarter of each token's lifetime.
const DefaultSkew = credential.DefaultSkew

// TokenSource supplies the token for a request. Token must be safe for
// concurrent use and return a token that is valid now, or an error.
type TokenSource interface {
	Token(ctx context.Context) (*Token, error)
}

// Refresher is a TokenSource that can replace a token the server rejected
// (RFC 6750 §3.1 invalid_token). Refresh returns the current token if it
// differs from stale; otherwise it refreshes, at most once at a time.
type Refresher interface {
	TokenSource
	Refresh(ctx context.Context, stale *Token) (*Token, error)
}

// StaticToken returns a TokenSource for a token the user supplied, such as
// one from an environment variable. It is authoritative: it is never
// refreshed, never stored and never replaced after a 401.
func StaticToken(accessToken string) TokenSource {
	t := &Token{AccessToken: accessToken, TokenType: "Bearer"}
	a := newAuthorization(t)
	return staticSource{t, &a}
}

type staticSource struct {
	t    *Token
	auth *authorizationValue // a pointer, so that staticSource stays comparable
}

func (s staticSource) Token(context.Context) (*Token, error) { return s.t, nil }

// EventKind says how a Source got its token.
type EventKind string

// The kinds of RefreshEvent.
const (
	// Refreshed: this process redeemed the refresh token.
	Refreshed EventKind = "refreshed"
	// Adopted: another process had already rotated it; its set was used.
	Adopted EventKind = "adopted"
	// Kept: an early refresh failed; the still-valid token was kept.
	Kept EventKind = "kept"
)

// RefreshEvent describes how a Source got a new token, for callers that
// want to show or count it.
type RefreshEvent struct {
	Key        Key
	Kind       EventKind
	Generation uint64
	Err        error // set for Kept
	LockWait   time.Duration
}

// Timeouts are the bounds of the refresh transaction, in one struct
// because their order is what keeps it safe (see credential.Timeouts).
type Timeouts = credential.Timeouts

// DefaultTimeouts are the bounds where Config, Source or a store is given
// none: a copy of credential.DefaultTimeouts, which is what they read.
var DefaultTimeouts = credential.DefaultTimeouts

// Source is the shared holder of one credential's token. A Transport
// reads it on every request. It refreshes early when the expiry is known
// and on demand after a 401, and guarantees that a refresh token is
// redeemed at most once across goroutines (single-flight) and processes
// (Locker, then re-read the store and compare). Source is safe for
// concurrent use; its fields must not change after first use.
type Source struct {
	Config *Config // token endpoint; its Issuer and ClientID must match the credential's
	Store  Store
	Key    Key
	// Lock serialises refreshes across processes. Nil means the Store's;
	// a Store without a Locker is refused (ErrNoLocker), since in-process
	// exclusion alone lets two processes spend one refresh token.
	Lock Locker
	// Skew is the early-refresh margin; 0 means DefaultSkew.
	Skew time.Duration
	// Timeout bounds one refresh transaction once the lock is held; 0
	// means DefaultTimeouts.Refresh. It must stay below the lock wait of
	// the other processes.
	Timeout time.Duration
	// LoginHint is appended to login-required errors, e.g.
	// "run `latch auth login`".
	LoginHint string
	// Retries is how many times a refresh is resent after an answer that
	// says it was not processed (408, 429, 503, refused connection); 0
	// means 3, negative means never.
	Retries int
	// Regrant, if set, obtains a new set for a credential that has no
	// refresh token, with the grant that made it: client credentials
	// (RFC 6749 §4.4) or a token exchange (RFC 8693 §2). It runs in the
	// refresh transaction — early, after a 401, under the lock, once per
	// expiry across processes — is given the stored set it renews, and
	// its answer is saved as a refresh's. Nothing is spent, so a failure
	// keeps the stored set; a server's refusal is ErrLoginRequired, and
	// other errors are returned wrapped.
	Regrant func(ctx context.Context, stored *Token) (*Token, error)
	// OnRefresh, if set, is called after each refresh outcome.
	OnRefresh func(RefreshEvent)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	loadMu sync.Mutex // serialises the first store read
	mu     sync.Mutex
	cur    *Token
	auth   authorizationValue // cur's, computed once (see authorization)
	flight *flight
	dead   error // why cur was dropped: its grant died and its token was rejected
	// kept is a valid token whose early refresh failed; it is not tried
	// again before keptUntil.
	kept      *Token
	keptUntil time.Time
	// afterRejection is the set a refresh after a 401 brought, at
	// afterRejectionAt (see Refresh).
	afterRejection   *Token
	afterRejectionAt time.Time
}

type flight struct {
	done chan struct{}
	sent atomic.Bool // the grant has gone to the server
	tok  *Token
	err  error
}

var _ Refresher = (*Source)(nil)

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) skew() time.Duration {
	if s.Skew > 0 {
		return s.Skew
	}
	return DefaultSkew
}

// Token returns a token that is valid now. It loads the store on first use,
// refreshes within Skew of expiry, and keeps a still-valid token when that
// early refresh fails transiently.
func (s *Source) Token(ctx context.Context) (*Token, error) {
	s.mu.Lock()
	t := s.cur
	s.mu.Unlock()
	if t != nil && t.Fresh(s.now(), s.skew()) {
		return t, nil
	}
	if t == nil {
		var err error
		if t, err = s.load(ctx); err != nil {
			return nil, err
		}
		if t.Fresh(s.now(), s.skew()) {
			return s.current(t), nil
		}
	}
	if !t.Refreshable() && s.Regrant == nil && !t.Expired(s.now()) {
		return s.current(t), nil // nothing to refresh with: use it while it lasts
	}
	if s.keptRecently(t) {
		return s.current(t), nil
	}
	nt, err := s.refresh(ctx, t, true)
	var refused *earlyRefusal
	if errors.As(err, &refused) && t.Expired(s.now()) {
		// The server refused while the token was valid, and it expired
		// before the answer came: the refresh at expiry decides, now.
		nt, err = s.refresh(ctx, t, true)
	}
	if err != nil {
		// An early refresh that fails leaves a token that still works;
		// it is tried again after keepBackoff, not on every request.
		if !t.Expired(s.now()) {
			s.mu.Lock()
			s.kept, s.keptUntil = t, s.now().Add(keepBackoff)
			s.mu.Unlock()
			s.emit(RefreshEvent{Key: s.Key, Kind: Kept, Generation: t.Generation, Err: err})
			return s.current(t), nil
		}
		return nil, err
	}
	return s.current(nt), nil
}

// rejectionWindow is how long after a refresh brought on by a 401 a 401
// for the new token is passed on rather than refreshed again (see
// Refresh). Past it, a 401 is a newer reason: the server may have revoked
// a token that worked meanwhile.
const rejectionWindow = 5 * time.Minute

// keepBackoff is how long a Source keeps a still-valid token after an
// early refresh of it failed before it tries again.
const keepBackoff = 10 * time.Second

// keptRecently reports whether an early refresh of t failed less than
// keepBackoff ago, and t is still valid.
func (s *Source) keptRecently(t *Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kept != nil && s.kept.SameSet(t) && s.now().Before(s.keptUntil) && !t.Expired(s.now())
}

// current returns the installed token when it is t (its Authorization
// value is computed already), else t. Only the first load and a finished
// flight install.
func (s *Source) current(t *Token) *Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Matches(t) {
		return s.cur
	}
	return t
}

// set installs t and its Authorization value.
func (s *Source) set(t *Token) {
	s.cur, s.auth = t, newAuthorization(t)
}

// authorization returns t's Authorization header values: those computed
// when t was installed if it is the current token, so that a request
// costs no allocation for them.
func (s *Source) authorization(t *Token) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == s.cur {
		return s.auth.of(t)
	}
	return authorizationHeader(t)
}

// load reads the store on first use. Concurrent first callers share one
// read: a command reads its store once, however many requests it starts.
func (s *Source) load(ctx context.Context) (*Token, error) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	t, err := s.Store.Load(ctx, s.Key)
	if errors.Is(err, ErrNotFound) {
		s.mu.Lock()
		dead := s.dead
		s.mu.Unlock()
		if dead != nil {
			return nil, dead
		}
		return nil, s.loginRequired(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("load credential: %w", err)
	}
	if t, err = s.bound(t); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cur == nil {
		s.set(t)
	}
	s.mu.Unlock()
	return t, nil
}

// bound returns the stored t bound to s.Key (see Bind), and refuses a
// credential minted by another issuer or client than s.Config's, so a
// refresh token is only ever sent to the server that issued it.
func (s *Source) bound(t *Token) (*Token, error) {
	t, err := Bind(s.Key, t)
	if err != nil {
		return nil, fmt.Errorf("load credential: %w; refusing to use it", err)
	}
	if s.Config != nil && ((t.Issuer != "" && t.Issuer != s.Config.Issuer) || (t.ClientID != "" && t.ClientID != s.Config.ClientID)) {
		return nil, fmt.Errorf("credential was issued by %s to client %s, not %s to %s; refusing to use it",
			t.Issuer, t.ClientID, s.Config.Issuer, s.Config.ClientID)
	}
	return t, nil
}

// Refresh replaces stale, the token a server rejected. If the current
// token already differs from stale, it is returned without a refresh. If
// stale is what this Source's own refresh after a 401 brought, less than
// 5 minutes ago, stale is returned: the server refuses even a fresh token
// there, a refresh would rotate the grant for nothing, and the caller
// passes the refusal on. A newer reason (expiry, a later 401) refreshes.
func (s *Source) Refresh(ctx context.Context, stale *Token) (*Token, error) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil && stale != nil && !cur.SameSet(stale) {
		return s.current(cur), nil // another goroutine already refreshed
	}
	if stale == nil {
		stale = cur
	}
	t, err := s.refresh(ctx, stale, false)
	if err != nil {
		return nil, err
	}
	return s.current(t), nil
}

// Renew refreshes now, though the token may still be fresh (RFC 6749
// §6), in the same locked transaction as Token: a set a sibling saved
// since is adopted instead, with no token call. It keeps alive a refresh
// token that lapses when unused (refresh_token_expires_in). A refusal
// while the access token still works keeps the whole set, as an early
// refresh does; only a refusal of an expired set clears it.
func (s *Source) Renew(ctx context.Context) (*Token, error) {
	t, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	nt, err := s.refresh(ctx, t, true)
	if err != nil {
		return nil, err
	}
	return s.current(nt), nil
}

// Refreshing reports whether a refresh grant has been sent and its answer
// is not yet saved. A process that is asked to exit should Wait then, or
// the rotated refresh token is lost (the server has spent the old one).
func (s *Source) Refreshing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight != nil && s.flight.sent.Load()
}

// Wait blocks until no refresh is in flight or ctx ends. The flight itself
// is bounded by Timeout and DefaultTimeouts.Save.
func (s *Source) Wait(ctx context.Context) error {
	s.mu.Lock()
	f := s.flight
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh joins or starts the single in-process flight. The flight runs
// detached from any one caller's cancellation; each caller waits on its
// own ctx. Flights run one at a time and each reads the store under the
// lock, so a finished flight's set is the newest known and is installed.
func (s *Source) refresh(ctx context.Context, stale *Token, early bool) (*Token, error) {
	s.mu.Lock()
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go func() {
			f.tok, f.err = s.redeem(context.WithoutCancel(ctx), f, stale, early)
			s.mu.Lock()
			switch {
			case f.tok != nil:
				s.set(f.tok)
			case errors.Is(f.err, ErrLoginRequired):
				// The set is dead and gone from the store: never send it
				// again. A later login is found by the next load.
				s.cur, s.auth, s.dead = nil, authorizationValue{}, f.err
			}
			s.flight = nil
			s.mu.Unlock()
			close(f.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.tok, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("refresh token: %w", ctx.Err())
	}
}

// adoptable reports whether base, loaded after stale, is a set a sibling
// saved that serves instead of redeeming stale.
func (s *Source) adoptable(base, stale *Token, early bool) bool {
	if stale == nil || base.SameSet(stale) {
		return false
	}
	usable := !base.Expired(s.now())
	if early {
		usable = base.Fresh(s.now(), s.skew()) || (!base.Refreshable() && s.Regrant == nil && usable)
	}
	return usable
}

// awaitSibling waits, when lock is a Waiter, for the process that holds
// the lock to finish, without taking it, and returns the set it saved
// when that serves (adoptable). Nil and no error means take the lock:
// it was free (the re-read under it decides), or the holder saved
// nothing usable. A wait that timed out is the lock's error. Reading
// without the lock is safe: a set is saved whole, and nothing is
// redeemed here.
func (s *Source) awaitSibling(ctx context.Context, lock Locker, stale *Token, early bool) (*Token, error) {
	w, ok := lock.(Waiter)
	if !ok || stale == nil {
		return nil, nil
	}
	waited, err := w.Wait(ctx, s.Key)
	if err != nil || !waited {
		return nil, err
	}
	base, err := s.Store.Load(ctx, s.Key)
	if err != nil {
		return nil, nil // the load under the lock says what is wrong
	}
	if base, err = s.bound(base); err != nil {
		return nil, nil
	}
	if !s.adoptable(base, stale, early) {
		return nil, nil // the holder saved nothing that serves: take the lock
	}
	return base, nil
}

func (s *Source) locker() Locker {
	if s.Lock != nil {
		return s.Lock
	}
	lk, _ := s.Store.(Locker)
	return lk
}

func (s *Source) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return credential.DefaultTimeouts.Refresh
}

// redeem is the refresh transaction: lock, re-read, compare, check the
// store can be written, redeem (RFC 6749 §6), persist with a
// compare-and-swap, unlock. It returns a set to install even with an
// error when the grant died but its access token is kept.
func (s *Source) redeem(ctx context.Context, f *flight, stale *Token, early bool) (*Token, error) {
	if s.Config == nil {
		return nil, s.loginRequired(errors.New("no token endpoint configured"))
	}
	lock := s.locker()
	if lock == nil {
		return nil, fmt.Errorf("refresh token: %w", ErrNoLocker)
	}
	start := time.Now()
	if base, err := s.awaitSibling(ctx, lock, stale, early); err != nil || base != nil {
		if err != nil {
			return nil, fmt.Errorf("refresh token: %w", err)
		}
		s.emit(RefreshEvent{Key: s.Key, Kind: Adopted, Generation: base.Generation, LockWait: time.Since(start)})
		return base, nil
	}
	unlock, err := lock.Lock(ctx, s.Key)
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	defer unlock()
	waited := time.Since(start)
	// saveCtx outlives the transaction's deadline: an answer that came
	// back is always given its save.
	saveCtx, cancelSave := context.WithTimeout(ctx, s.timeout()+credential.DefaultTimeouts.Save)
	defer cancelSave()
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()

	// Under the lock, the store is the truth: a sibling may have rotated.
	base, err := s.Store.Load(ctx, s.Key)
	if errors.Is(err, ErrNotFound) {
		return nil, s.loginRequired(errors.New("the credential was removed (logged out)"))
	}
	if err != nil {
		return nil, fmt.Errorf("refresh token: reload credential: %w", err)
	}
	if base, err = s.bound(base); err != nil {
		return nil, err
	}
	if s.adoptable(base, stale, early) {
		s.emit(RefreshEvent{Key: s.Key, Kind: Adopted, Generation: base.Generation, LockWait: waited})
		return base, nil
	}
	if !early && base.SameSet(stale) && s.refusedAgain(base) {
		// Refreshed because of a 401 and refused again soon after: pass
		// the 401 on.
		return base, nil
	}
	if base.RefreshToken == "" && s.Regrant == nil {
		return nil, s.noGrant(saveCtx, base, early)
	}
	if wc, ok := s.Store.(WriteChecker); ok {
		if err := wc.CheckWrite(ctx, s.Key, encodedSize(base)); err != nil {
			if base.RefreshToken == "" {
				return nil, fmt.Errorf("renew token: not asked for, because the new one could not be saved: %w", err)
			}
			return nil, fmt.Errorf("refresh token: not spent, because its replacement could not be saved: %w", err)
		}
	}
	if base.RefreshToken == "" {
		return s.regrant(ctx, saveCtx, base, early, waited)
	}

	f.sent.Store(true)
	sentAt := s.now()
	cfg := s.configFor(base)
	nt, err := s.withRetry(ctx, true, func(ctx context.Context) (*Token, error) { return cfg.Refresh(ctx, base.RefreshToken) })
	if err != nil && IsTerminal(err) && s.Regrant != nil {
		// A grant's answer carried a refresh token, now dead; the grant
		// itself may still work, and is asked before anything is dropped.
		return s.regrant(ctx, saveCtx, base, early, waited)
	}
	if err != nil {
		if IsTerminal(err) && early && !base.Expired(sentAt) {
			// Some servers refuse an early refresh (400) that works later,
			// or for good: either way the access token worked when asked.
			// Keep the whole set; the refresh at expiry decides.
			return nil, &earlyRefusal{err: err}
		}
		if IsTerminal(err) {
			return s.forget(saveCtx, base, !early, err), s.loginRequired(err)
		}
		return nil, s.refreshFailed(err)
	}
	s.inherit(nt, base)
	if nt.RefreshExpiry.IsZero() && nt.RefreshToken == base.RefreshToken {
		nt.RefreshExpiry = base.RefreshExpiry
	}
	if err := s.Store.Save(saveCtx, s.Key, base, nt); err != nil {
		return nil, s.loginRequired(&unsavedError{err: err})
	}
	return s.saved(nt, early, waited), nil
}

// saved records nt, a set this Source's grant brought and saved: after a
// 401 it is the set a refusal within rejectionWindow passes through
// (refusedAgain).
func (s *Source) saved(nt *Token, early bool, waited time.Duration) *Token {
	if !early {
		s.mu.Lock()
		s.afterRejection, s.afterRejectionAt = nt, s.now()
		s.mu.Unlock()
	}
	s.emit(RefreshEvent{Key: s.Key, Kind: Refreshed, Generation: nt.Generation, LockWait: waited})
	return nt
}

// inherit gives nt, the answer to a grant for base's login, what the
// answer does not repeat: the binding, the scope, the lineage, and the
// next generation.
func (s *Source) inherit(nt, base *Token) {
	nt.Issuer, nt.ClientID, nt.Account, nt.ClientSecret = base.Issuer, base.ClientID, base.Account, base.ClientSecret
	nt.User = base.User
	if nt.Issuer == "" {
		nt.Issuer, nt.ClientID = s.Config.Issuer, s.Config.ClientID
	}
	if nt.Scope == "" {
		nt.Scope = base.Scope
	}
	nt.Lineage = base.Lineage
	nt.Generation = base.Generation + 1
}

// regrant renews base, a set without a refresh token, with s.Regrant
// under the lock held by redeem. Nothing is spent: a failure keeps the
// stored set, and a still-valid token is kept as after an early refresh.
func (s *Source) regrant(ctx, saveCtx context.Context, base *Token, early bool, waited time.Duration) (*Token, error) {
	sentAt := s.now()
	nt, err := s.withRetry(ctx, false, func(ctx context.Context) (*Token, error) { return s.Regrant(ctx, base) })
	if err == nil && nt == nil {
		err = errors.New("the Regrant func returned no token")
	}
	if err != nil {
		refused := refusedGrant(err)
		switch {
		case refused && early && !base.Expired(sentAt):
			return nil, &earlyRefusal{err: err, what: "renew token early"}
		case refused:
			return nil, s.loginRequired(fmt.Errorf("renew token: %w", err))
		}
		return nil, fmt.Errorf("renew token: %w", err)
	}
	s.inherit(nt, base)
	if err := s.Store.Save(saveCtx, s.Key, base, nt); err != nil {
		// Nothing was spent: the old set stays, and the next call asks again.
		return nil, fmt.Errorf("renew token: save the new token: %w", err)
	}
	return s.saved(nt, early, waited), nil
}

// refusedGrant reports whether err is a server's refusal of a grant that
// asking again will not change: any error answer (RFC 6749 §5.2) but
// server_error and temporarily_unavailable, and none sent with 429 or 5xx. A token exchange refuses a
// subject token with invalid_request (RFC 8693 §2.2.2).
func refusedGrant(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.StatusCode != http.StatusTooManyRequests && te.StatusCode < 500 &&
		te.Code != "server_error" && te.Code != "temporarily_unavailable"
}

// earlyRefusal is a terminal answer to a refresh sent while the access
// token was still valid. The set is kept.
type earlyRefusal struct {
	err  error
	what string // "" means "refresh token early"
}

func (e *earlyRefusal) Error() string {
	if e.what != "" {
		return e.what + ": " + e.err.Error()
	}
	return "refresh token early: " + e.err.Error()
}
func (e *earlyRefusal) Unwrap() error { return e.err }

// refusedAgain reports whether t is the set this Source's last refresh
// after a 401 brought, less than rejectionWindow ago: a 401 for it is no
// reason to refresh again.
func (s *Source) refusedAgain(t *Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.afterRejection != nil && s.afterRejection.SameSet(t) && s.now().Before(s.afterRejectionAt.Add(rejectionWindow))
}

// configFor returns the Config to refresh t with: s.Config, with t's
// client secret when the Config has none.
func (s *Source) configFor(t *Token) *Config {
	if t.ClientSecret == "" || s.Config.ClientSecret != "" || s.Config.Endpoint.AuthStyle == AuthStyleNone {
		return s.Config
	}
	c := *s.Config
	c.ClientSecret = t.ClientSecret
	return &c
}

// encodedSize is about how many bytes a store needs for t.
func encodedSize(t *Token) int {
	b, _ := json.Marshal(t)
	return len(b)
}

// noGrant explains why a set without a refresh token cannot be renewed.
// After a 401 the server has rejected the set's access token, so the set
// is deleted (if unchanged): it must never be sent again.
func (s *Source) noGrant(ctx context.Context, base *Token, early bool) error {
	var why error
	switch {
	case base.Revoked != "" && early:
		why = fmt.Errorf("the server revoked the grant (%s) and the access token has expired", base.Revoked)
	case base.Revoked != "":
		why = fmt.Errorf("the server revoked the grant (%s) and has now rejected the access token", base.Revoked)
	case early:
		why = errors.New("the access token expired and there is no refresh token")
	default:
		why = errors.New("the server rejected the access token and there is no refresh token")
	}
	if !early || base.Expired(s.now()) {
		_ = s.Store.Delete(ctx, s.Key, base)
	}
	return s.loginRequired(why)
}

// Errors a refresh returns that say what survived; use errors.Is.
var (
	// ErrUnsaved: the server rotated the refresh token but the new set
	// could not be saved, so the old refresh token is spent and this login
	// will need to be renewed. The store's error is wrapped too.
	ErrUnsaved = errors.New("the rotated refresh token could not be saved")
	// ErrAnswerLost: a refresh grant was sent and no usable answer came
	// back (the connection closed or was reset, the request timed out, or
	// the server failed with 500, 502 or 504, also on the one immediate
	// retry). The server may have rotated the refresh token without the
	// new one reaching latch, so the stored one may be spent. The last
	// cause is wrapped too.
	ErrAnswerLost = errors.New("no answer to the refresh request")
)

// unsavedError is ErrUnsaved with the store's error.
type unsavedError struct{ err error }

func (e *unsavedError) Error() string {
	return "the server rotated the refresh token, but the new one could not be saved (" + e.err.Error() +
		"); the old one is spent"
}

func (e *unsavedError) Unwrap() []error { return []error{ErrUnsaved, e.err} }

// answerLostError is ErrAnswerLost with its last cause.
type answerLostError struct{ err error }

func (e *answerLostError) Error() string {
	return "no answer to the refresh request (" + e.err.Error() +
		"); the server may have rotated the refresh token without the new one arriving"
}

func (e *answerLostError) Unwrap() []error { return []error{ErrAnswerLost, e.err} }

// withRetry sends a grant, and sends it again in two cases only. For a
// grant that spends nothing (!spends: a Regrant), a lost answer is just
// one more unprocessed request, and is never ErrAnswerLost. For the
// refresh grant:
//
// An answer that says the server did not process the grant (408, 429,
// 503, temporarily_unavailable per RFC 6749 §5.2, or a refused
// connection) is retried up to Retries times, waiting as Retry-After asks
// (capped), within a budget: the lock is held meanwhile.
//
// An answer lost after the grant was sent (the connection closed or reset,
// or 500/502/504) is retried once, at once, still under the lock. The
// server may have processed the grant and rotated the refresh token, and
// the rotated set reached no one. Presenting the old token again recovers
// the session against a server with a rotation grace period (Hydra's
// rotation_grace_period, Okta's grace window, Auth0's reuse interval),
// which answers with a fresh set. Against a strict server it loses nothing
// that was not already lost: the old token is spent either way, and the
// next command would present it too. The one cost: a strict server that
// did rotate now sees reuse and revokes the family, and with it an access
// token that may still have had minutes to live. A timeout is not retried:
// the server may still be working on the first request.
func (s *Source) withRetry(ctx context.Context, spends bool, send func(context.Context) (*Token, error)) (*Token, error) {
	retries := s.Retries
	if retries == 0 {
		retries = defaultRetries
	}
	start := time.Now()
	var lost error
	for attempt := 0; ; attempt++ {
		t, err := send(ctx)
		switch {
		case err == nil:
			return t, nil
		case !spends:
		case lost != nil && IsTerminal(err):
			return nil, fmt.Errorf("the answer to the first request was lost (%v), and the server refused the same grant again: %w", lost, err)
		case lost != nil:
			return nil, &answerLostError{err: err}
		case answerLost(err) && ctx.Err() == nil:
			lost = err
			continue
		case errors.Is(err, context.DeadlineExceeded):
			return nil, &answerLostError{err: err}
		}
		wait, ok := retryable(err)
		if !spends && answerLost(err) && ctx.Err() == nil {
			ok = true // nothing was spent: a lost answer is asked again
		}
		if wait <= 0 {
			wait = time.Duration(attempt+1) * 250 * time.Millisecond
		}
		wait = min(wait, maxRetryWait)
		// The lock is held meanwhile: stop retrying past the budget, so
		// that waiting processes are not held near their lock bound.
		if !ok || attempt >= retries || time.Since(start)+wait > retryBudget {
			return t, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, err
		case <-timer.C:
		}
	}
}

// answerLost reports whether err means the grant was sent but its answer
// never arrived whole.
func answerLost(err error) bool {
	var re *ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case 500, 502, 504:
			return true
		}
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// defaultRetries is how many times a refresh is sent again after an
// answer that says it was not processed, when Source.Retries is 0.
const defaultRetries = 3

const (
	maxRetryWait = 5 * time.Second  // the most one Retry-After is honoured for
	retryBudget  = 10 * time.Second // the most all retries of one refresh may take
)

func retryable(err error) (time.Duration, bool) {
	var re *ResponseError
	var te *TokenError
	switch {
	case err == nil:
		return 0, false
	case errors.As(err, &re):
		switch re.StatusCode {
		case 408, 429, 503:
			return re.RetryAfter, true
		}
	case errors.As(err, &te):
		return 0, te.Code == "temporarily_unavailable"
	case errors.Is(err, syscall.ECONNREFUSED):
		return 0, true
	}
	return 0, false
}

// forget clears the dead refresh token, but only if the store still holds
// exactly the set that failed (LESSONS 4); the caller holds the lock. The
// whole set goes if its access token has expired or the server rejected
// it; otherwise the set is kept, same lineage and generation, with no
// refresh token and the reason in Revoked, and returned.
func (s *Source) forget(ctx context.Context, failed *Token, rejected bool, why error) *Token {
	cur, err := s.Store.Load(ctx, s.Key)
	if err != nil || !cur.Matches(failed) {
		return nil
	}
	if rejected || cur.Expired(s.now()) {
		_ = s.Store.Delete(ctx, s.Key, cur)
		return nil
	}
	// The access token may still work: keep it, drop only the dead grant.
	kept := *cur
	kept.RefreshToken, kept.RefreshExpiry = "", time.Time{}
	kept.Revoked = why.Error()
	var te *TokenError
	if errors.As(why, &te) {
		kept.Revoked = te.Error()
	}
	if s.Store.Save(ctx, s.Key, cur, &kept) != nil {
		return nil
	}
	return &kept
}

func (s *Source) loginRequired(err error) error {
	return &LoginRequiredError{Key: s.Key, Hint: s.LoginHint, Err: err}
}

func (s *Source) emit(ev RefreshEvent) {
	if s.OnRefresh != nil {
		s.OnRefresh(ev)
	}
}

// refreshFailed is the error for a refresh that failed but not terminally.
// A server that wants the user at a browser (OIDC Core §3.1.2.6) needs a
// login, but the grant is not dead: the stored set stays, and may work
// again once the user has satisfied the policy.
func (s *Source) refreshFailed(err error) error {
	if NeedsInteraction(err) {
		return s.loginRequired(err)
	}
	return fmt.Errorf("refresh token: %w", err)
}
