package credential

import (
	"fmt"
	"time"
)

// DefaultSkew is how long before expiry a latch.Source refreshes when
// its Skew is 0. It is capped at a quarter of each token's lifetime.
const DefaultSkew = 60 * time.Second

// Timeouts are the bounds of the refresh transaction, in one struct
// because their order is what keeps it safe. A holder keeps the lock for
// at most Refresh (every token request, each within Token, and every
// retry) plus Save (the save of an answer that arrived, never cut
// short); a waiter gives up after Lock, which is longer, so a waiter
// never gives up on a holder that is still in bounds. Check states the
// order.
type Timeouts struct {
	Token   time.Duration // one token request (latch.Config.Timeout)
	Refresh time.Duration // one refresh transaction once locked (latch.Source.Timeout)
	Save    time.Duration // the save of an answer that arrived
	Lock    time.Duration // a wait for the lock (the stores' own bound)
}

// DefaultTimeouts are the bounds where latch.Config, latch.Source or a
// store is given none. Read it; do not change it.
var DefaultTimeouts = Timeouts{
	Token:   15 * time.Second,
	Refresh: 20 * time.Second,
	Save:    5 * time.Second,
	Lock:    30 * time.Second,
}

// Check reports whether t keeps the order the lock's safety rests on:
// every bound positive, a token request within a refresh, and a waiter
// waiting longer than a holder may hold the lock.
func (t Timeouts) Check() error {
	switch {
	case t.Token <= 0 || t.Refresh <= 0 || t.Save <= 0 || t.Lock <= 0:
		return fmt.Errorf("timeouts %+v: every bound must be positive", t)
	case t.Token > t.Refresh:
		return fmt.Errorf("token request bound %s is longer than the refresh bound %s", t.Token, t.Refresh)
	case t.Lock <= t.Refresh+t.Save:
		return fmt.Errorf("lock wait %s does not outlast a holder's %s (refresh %s + save %s)", t.Lock, t.Refresh+t.Save, t.Refresh, t.Save)
	}
	return nil
}
