// Package agent keeps one credential's grant alive while nobody calls,
// and delivers its access token to programs that read a token once: a
// file, a file rendered from a template, a Unix socket, a child process.
//
// An Agent is one more party to its Source's locked refresh transaction,
// never a second source of truth: every refresh goes through the Source
// (lock, re-read, compare, redeem, compare-and-swap), so a storm of other
// processes, a second agent, or a kill at any point cannot make the
// refresh token be spent twice. No sink ever sees the refresh token.
package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/latchdev/latch"
)

// Sink receives the access token an Agent holds.
type Sink interface {
	// Deliver makes t the token the sink serves.
	Deliver(t *latch.Token) error
	// Clear empties the sink, so that its readers fail fast: the grant
	// is dead.
	Clear() error
	// String names the sink in log lines ("token file /run/x/token").
	String() string
}

// Schedule is what an Agent plans, reported after each wake.
type Schedule struct {
	Last     time.Time // the last refresh the agent made or adopted
	Next     time.Time // the next wake; zero if nothing ever expires
	Failures int       // refreshes that failed in a row (transient)
	// Limit, when set, is when the refresh token stops working for good:
	// a refresh did not move its expiry, so only a new login extends it.
	Limit time.Time
}

// Agent refreshes Source's token before the access token expires and
// before the refresh token's idle window lapses, and delivers each token
// to Sinks. The zero value of each optional field is a sensible default.
type Agent struct {
	Source *latch.Source
	Sinks  []Sink
	// KeepAlive, when positive, is the longest the agent lets the
	// refresh token go unused. Without it the agent learns the window
	// from refresh_token_expires_in (Token.RefreshExpiry), when the
	// server sends it.
	KeepAlive time.Duration
	// MaxBackoff bounds the wait between refreshes that fail while the
	// server is down; 0 means 5 minutes. The waits grow from 1 s, with
	// jitter, and never clear a credential.
	MaxBackoff time.Duration
	// Logf, if set, gets one line per thing that happened.
	Logf func(format string, args ...any)
	// OnSchedule, if set, is called after each wake with the plan.
	OnSchedule func(Schedule)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	sched        Schedule
	served       string // the access token the sinks were given
	pending      []Sink // sinks whose last delivery failed
	sinkFailures int
}

// maxSleep caps one timer. Go's timers stop while a machine is asleep, so
// a laptop that wakes catches up within this, not after the time it
// slept.
const maxSleep = 5 * time.Minute

// Run keeps the grant alive until ctx ends (it returns nil) or the grant
// dies (it empties the sinks and returns the latch.ErrLoginRequired
// error). A transient failure never ends it.
func (a *Agent) Run(ctx context.Context) error {
	if a.Source == nil {
		return errors.New("agent: no Source")
	}
	defer a.finish()
	t, err := a.Source.Token(ctx)
	if err == nil {
		a.sched.Last = t.IssuedAt
	}
	good := t // the newest token that worked
	for {
		var next time.Time
		switch {
		case err == nil:
			good = t
			next = earliest(a.due(t), a.deliver(t))
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, latch.ErrLoginRequired):
			a.clear(err)
			return err
		default:
			next = a.failed(good, err)
		}
		a.sched.Next = next
		if a.OnSchedule != nil {
			a.OnSchedule(a.sched)
		}
		for next.IsZero() || a.now().Before(next) {
			if !a.sleep(ctx, next) {
				return nil
			}
		}
		if due := a.due(good); err == nil && (due.IsZero() || a.now().Before(due)) {
			continue // a sink to write again; the token is fresh
		}
		if good == nil {
			t, err = a.Source.Token(ctx)
		} else {
			t, err = a.Source.Renew(ctx)
		}
		if err == nil {
			a.renewed(good, t)
		}
	}
}

// finish waits for a refresh whose grant was sent when ctx ended, so the
// rotated set is saved before the process exits.
func (a *Agent) finish() {
	if !a.Source.Refreshing() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), latch.DefaultTimeouts.Refresh+latch.DefaultTimeouts.Save)
	defer cancel()
	_ = a.Source.Wait(ctx)
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) logf(format string, args ...any) {
	if a.Logf != nil {
		a.Logf(format, args...)
	}
}

// renewed records a refresh from old to t: when it was made, and whether
// the refresh token's expiry moved with it (else it is a limit only a
// login extends).
func (a *Agent) renewed(old, t *latch.Token) {
	a.sched.Failures = 0
	if old != nil && t.Generation == old.Generation && t.Lineage == old.Lineage {
		return // a refusal kept the set; nothing was renewed
	}
	a.sched.Last = a.now()
	switch {
	case t.RefreshExpiry.IsZero():
		a.sched.Limit = time.Time{}
	case old != nil && !old.RefreshExpiry.IsZero() && t.RefreshExpiry.Sub(old.RefreshExpiry) < t.IssuedAt.Sub(old.IssuedAt)/2:
		// A sliding window moves by about the time between the two
		// refreshes; a fixed limit does not move.
		if a.sched.Limit.IsZero() {
			a.logf("warning: the refresh token stops working at %s and refreshing does not extend it; log in again before then",
				t.RefreshExpiry.Local().Format(time.RFC3339))
		}
		a.sched.Limit = t.RefreshExpiry
	default:
		a.sched.Limit = time.Time{}
	}
	a.logf("refreshed (generation %d); access token valid until %s", t.Generation, stamp(t.Expiry))
}

// failed logs a refresh that failed and returns when to try again.
func (a *Agent) failed(t *latch.Token, err error) time.Time {
	if latch.IsTerminal(err) && t != nil && !t.Expiry.IsZero() && !t.Expired(a.now()) {
		// The server refused an early refresh; the refresh at expiry
		// decides (some servers refuse early, and only early).
		a.logf("the server refused an early refresh (%v); trying again when the access token expires at %s", err, stamp(t.Expiry))
		return t.Expiry
	}
	a.sched.Failures++
	d := a.backoff(a.sched.Failures)
	a.logf("refresh failed (%v); the credential is kept; trying again in %s", err, d.Round(time.Second))
	return a.now().Add(d)
}

// backoff is the wait after n failures in a row: 1 s doubling up to
// MaxBackoff, each within ±20%, so a fleet that lost its server does not
// come back in step.
func (a *Agent) backoff(n int) time.Duration {
	limit := a.MaxBackoff
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	d := time.Second << min(n-1, 20)
	if d > limit {
		d = limit
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// due is when t must be renewed: within the Source's skew of its expiry,
// KeepAlive after the last refresh, or when three quarters of the refresh
// token's idle window have passed. Zero means never.
func (a *Agent) due(t *latch.Token) time.Time {
	var due time.Time
	if !t.Expiry.IsZero() {
		due = t.Expiry.Add(-a.skew(t))
	}
	if t.Refreshable() {
		last := t.IssuedAt // when the server last renewed the grant
		if last.IsZero() {
			last = a.sched.Last
		}
		if a.KeepAlive > 0 && !last.IsZero() {
			due = earliest(due, last.Add(a.KeepAlive))
		}
		if !t.RefreshExpiry.IsZero() && a.sched.Limit.IsZero() && !last.IsZero() {
			if window := t.RefreshExpiry.Sub(last); window > 0 {
				due = earliest(due, last.Add(window*3/4))
			}
		}
	}
	return due
}

// skew is the Source's early-refresh margin for t, as Token applies it.
func (a *Agent) skew(t *latch.Token) time.Duration {
	skew := a.Source.Skew
	if skew <= 0 {
		skew = latch.DefaultSkew
	}
	if !t.IssuedAt.IsZero() {
		if life := t.Expiry.Sub(t.IssuedAt); life > 0 && skew > life/4 {
			skew = life / 4
		}
	}
	return skew
}

// earliest returns the earlier of two times, a zero one meaning never.
func earliest(t, u time.Time) time.Time {
	if t.IsZero() || (!u.IsZero() && u.Before(t)) {
		return u
	}
	return t
}

// sleep waits until at, at most maxSleep, and reports false when ctx
// ended. A zero at sleeps maxSleep.
func (a *Agent) sleep(ctx context.Context, at time.Time) bool {
	d := maxSleep
	if !at.IsZero() {
		d = min(at.Sub(a.now()), maxSleep)
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliver hands t to every sink it is new to, and to those whose last
// delivery failed. It returns when to try the failed ones again (zero:
// none failed); they keep what they served.
func (a *Agent) deliver(t *latch.Token) time.Time {
	sinks := a.Sinks
	if t.AccessToken == a.served {
		sinks = a.pending
	}
	a.served, a.pending = t.AccessToken, nil
	for _, s := range sinks {
		if err := s.Deliver(t); err != nil {
			a.logf("could not update %s: %v; it keeps the last token", s, err)
			a.pending = append(a.pending, s)
		}
	}
	if len(a.pending) == 0 {
		a.sinkFailures = 0
		return time.Time{}
	}
	a.sinkFailures++
	return a.now().Add(a.backoff(a.sinkFailures))
}

// clear empties every sink after the grant died.
func (a *Agent) clear(why error) {
	for _, s := range a.Sinks {
		if err := s.Clear(); err != nil {
			a.logf("could not empty %s: %v", s, err)
		}
	}
	a.logf("the grant is dead (%v); the sinks are emptied", why)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "it is revoked (no expiry known)"
	}
	return t.Local().Format(time.RFC3339)
}

// String describes s for a log line.
func (s Schedule) String() string {
	next := "never (nothing expires)"
	if !s.Next.IsZero() {
		next = stamp(s.Next)
	}
	return fmt.Sprintf("next wake %s", next)
}
