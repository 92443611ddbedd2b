package latch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultSkew is how long before expiry a Source refreshes when Skew is 0.
// It is capped at a quarter of each token's lifetime.
const DefaultSkew = 60 * time.Second

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
	return staticSource{t, bearerValue(t)}
}

type staticSource struct {
	t      *Token
	bearer []string
}

func (s staticSource) Token(context.Context) (*Token, error) { return s.t, nil }

// RefreshEvent describes how a Source got a new token, for callers that
// want to show or count it. Kind is "refreshed" (this process redeemed the
// refresh token), "adopted" (another process had already rotated it) or
// "kept" (an early refresh failed transiently; the valid token was kept).
type RefreshEvent struct {
	Key        Key
	Kind       string
	Generation uint64
	Err        error // set for "kept"
	LockWait   time.Duration
}

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
	// Lock serialises refreshes across processes. Nil means the Store's,
	// if it implements Locker; otherwise only in-process exclusion.
	Lock Locker
	// Skew is the early-refresh margin; 0 means DefaultSkew.
	Skew time.Duration
	// LoginHint is appended to login-required errors, e.g.
	// "run `latch auth login`".
	LoginHint string
	// Retries is how many times a refresh is resent after an answer that
	// says it was not processed (408, 429, 503, refused connection); 0
	// means DefaultRetries, negative means never.
	Retries int
	// OnRefresh, if set, is called after each refresh outcome.
	OnRefresh func(RefreshEvent)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	loadMu sync.Mutex // serialises the first store read
	mu     sync.Mutex
	cur    *Token
	bearer []string // "Bearer <cur.AccessToken>", computed once per token
	flight *flight
}

type flight struct {
	done chan struct{}
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
	t, _, err := s.token(ctx)
	return t, err
}

// token is Token plus the cached Authorization value, for the Transport.
func (s *Source) token(ctx context.Context) (*Token, []string, error) {
	s.mu.Lock()
	t, b := s.cur, s.bearer
	s.mu.Unlock()
	if t != nil && !t.needsRefresh(s.now(), s.skew()) {
		return t, b, nil
	}
	if t == nil {
		var err error
		if t, err = s.load(ctx); err != nil {
			return nil, nil, err
		}
		if !t.needsRefresh(s.now(), s.skew()) {
			return s.current(t)
		}
	}
	nt, err := s.refresh(ctx, t, true)
	if err != nil {
		// An early refresh that fails leaves a token that still works.
		if !t.Expired(s.now()) {
			s.emit(RefreshEvent{Key: s.Key, Kind: "kept", Generation: t.Generation, Err: err})
			return s.current(t)
		}
		return nil, nil, err
	}
	return s.current(nt)
}

// current returns t with its bearer value, installing it if it is newer.
func (s *Source) current(t *Token) (*Token, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || (!same(s.cur, t) && t.Generation >= s.cur.Generation) {
		s.set(t)
	}
	if same(s.cur, t) {
		return s.cur, s.bearer, nil
	}
	return t, bearerValue(t), nil
}

func (s *Source) set(t *Token) {
	s.cur = t
	s.bearer = bearerValue(t)
}

func bearerValue(t *Token) []string {
	typ := t.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer" // RFC 6750 §2.1; some servers send "bearer"
	}
	return []string{typ + " " + t.AccessToken}
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
		return nil, s.loginRequired(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("load credential: %w", err)
	}
	if err := s.checkBinding(t); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cur == nil {
		s.set(t)
	}
	s.mu.Unlock()
	return t, nil
}

// checkBinding refuses a credential minted by another issuer or client, so
// a refresh token is only ever sent to the server that issued it.
func (s *Source) checkBinding(t *Token) error {
	if s.Config == nil {
		return nil
	}
	if (t.Issuer != "" && t.Issuer != s.Config.Issuer) || (t.ClientID != "" && t.ClientID != s.Config.ClientID) {
		return fmt.Errorf("credential was issued by %s to client %s, not %s to %s; refusing to use it",
			t.Issuer, t.ClientID, s.Config.Issuer, s.Config.ClientID)
	}
	return nil
}

// Refresh replaces stale, the token a server rejected. If the current
// token already differs from stale, it is returned without a refresh.
func (s *Source) Refresh(ctx context.Context, stale *Token) (*Token, error) {
	t, _, err := s.forceRefresh(ctx, stale)
	return t, err
}

func (s *Source) forceRefresh(ctx context.Context, stale *Token) (*Token, []string, error) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil && stale != nil && !same(cur, stale) && cur.Generation >= stale.Generation {
		return s.current(cur) // another goroutine already refreshed
	}
	if stale == nil {
		stale = cur
	}
	t, err := s.refresh(ctx, stale, false)
	if err != nil {
		return nil, nil, err
	}
	return s.current(t)
}

// refresh joins or starts the single in-process flight. The flight runs
// detached from any one caller's cancellation; each caller waits on its
// own ctx.
func (s *Source) refresh(ctx context.Context, stale *Token, early bool) (*Token, error) {
	s.mu.Lock()
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go func() {
			f.tok, f.err = s.redeem(context.WithoutCancel(ctx), stale, early)
			s.mu.Lock()
			if f.err == nil && (s.cur == nil || f.tok.Generation >= s.cur.Generation) {
				s.set(f.tok)
			}
			s.flight = nil
			s.mu.Unlock()
			close(f.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("refresh token: %w", ctx.Err())
	}
}

// redeem is the refresh transaction: lock, re-read, compare, check the
// store can be written, redeem (RFC 6749 §6), persist, unlock.
func (s *Source) redeem(ctx context.Context, stale *Token, early bool) (*Token, error) {
	if s.Config == nil {
		return nil, s.loginRequired(errors.New("no token endpoint configured"))
	}
	lock := s.Lock
	if lock == nil {
		lock, _ = s.Store.(Locker)
	}
	var waited time.Duration
	if lock != nil {
		start := time.Now()
		unlock, err := lock.Lock(ctx, s.Key)
		if err != nil {
			return nil, fmt.Errorf("refresh token: %w", err)
		}
		defer unlock()
		waited = time.Since(start)
	}

	// Under the lock, the store is the truth: a sibling may have rotated.
	base, err := s.Store.Load(ctx, s.Key)
	if errors.Is(err, ErrNotFound) {
		return nil, s.loginRequired(errors.New("credential was removed"))
	}
	if err != nil {
		return nil, fmt.Errorf("refresh token: reload credential: %w", err)
	}
	if err := s.checkBinding(base); err != nil {
		return nil, err
	}
	if stale != nil && !same(base, stale) {
		usable := !base.Expired(s.now())
		if early {
			usable = !base.needsRefresh(s.now(), s.skew())
		}
		if usable {
			s.emit(RefreshEvent{Key: s.Key, Kind: "adopted", Generation: base.Generation, LockWait: waited})
			return base, nil
		}
	}
	if base.RefreshToken == "" {
		return nil, s.loginRequired(errors.New("the access token expired and there is no refresh token"))
	}
	if wc, ok := s.Store.(WriteChecker); ok {
		if err := wc.CheckWrite(ctx, s.Key); err != nil {
			return nil, fmt.Errorf("refresh token: not spent, because its replacement could not be saved: %w", err)
		}
	}

	nt, err := s.redeemWithRetry(ctx, base.RefreshToken)
	if err != nil {
		if IsTerminal(err) {
			s.forget(ctx, base, !early)
			return nil, s.loginRequired(err)
		}
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	nt.Issuer, nt.ClientID, nt.Account = base.Issuer, base.ClientID, base.Account
	if nt.Issuer == "" {
		nt.Issuer, nt.ClientID = s.Config.Issuer, s.Config.ClientID
	}
	if nt.RefreshExpiry.IsZero() && nt.RefreshToken == base.RefreshToken {
		nt.RefreshExpiry = base.RefreshExpiry
	}
	if nt.Scope == "" {
		nt.Scope = base.Scope
	}
	nt.Generation = base.Generation + 1
	if err := s.Store.Save(ctx, s.Key, nt); err != nil {
		return nil, fmt.Errorf("refresh token: save rotated credential (the old refresh token is spent; log in again if this persists): %w", err)
	}
	s.emit(RefreshEvent{Key: s.Key, Kind: "refreshed", Generation: nt.Generation, LockWait: waited})
	return nt, nil
}

// redeemWithRetry sends the refresh grant, and sends it again only after
// an answer that says the server did not process it: 408, 429, 503 or
// temporarily_unavailable (RFC 6749 §5.2), waiting as Retry-After asks
// (capped), or a refused connection. Anything else is returned at once.
func (s *Source) redeemWithRetry(ctx context.Context, rt string) (*Token, error) {
	retries := s.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		t, err := s.Config.Refresh(ctx, rt)
		wait, ok := retryable(err)
		if wait <= 0 {
			wait = time.Duration(attempt+1) * 250 * time.Millisecond
		}
		wait = min(wait, maxRetryWait)
		// The lock is held meanwhile: stop retrying past the budget, so
		// that waiting processes are not held near their lock bound.
		if err == nil || !ok || attempt >= retries || time.Since(start)+wait > retryBudget {
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

// DefaultRetries is how many times a refresh is sent again after an
// answer that says it was not processed, when Source.Retries is 0.
const DefaultRetries = 3

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
// exactly the token that failed (LESSONS 4); the caller holds the lock.
// The access token goes too if it has expired or the server rejected it.
func (s *Source) forget(ctx context.Context, failed *Token, rejected bool) {
	cur, err := s.Store.Load(ctx, s.Key)
	if err != nil || !same(cur, failed) {
		return
	}
	if rejected || cur.Expired(s.now()) {
		_ = s.Store.Delete(ctx, s.Key)
		return
	}
	// The access token may still work: keep it, drop only the dead grant.
	kept := *cur
	kept.RefreshToken, kept.RefreshExpiry = "", time.Time{}
	_ = s.Store.Save(ctx, s.Key, &kept)
}

func (s *Source) loginRequired(err error) error {
	return &LoginRequiredError{Key: s.Key, Hint: s.LoginHint, Err: err}
}

func (s *Source) emit(ev RefreshEvent) {
	if s.OnRefresh != nil {
		s.OnRefresh(ev)
	}
}
