package device

import (
	"context"
	"time"

	"github.com/latchdev/latch"
)

// Poll is AccessToken with the sleep between polls given, so that tests
// run the poll on a fake clock.
func Poll(ctx context.Context, c *latch.Config, da *AuthResponse, sleep func(context.Context, time.Duration) error) (*latch.Token, error) {
	return poll(ctx, c, da, sleep)
}
