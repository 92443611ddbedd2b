package latch

import (
	"context"
	"time"
)

// PollDevice is DeviceAccessToken with the sleep between polls given, so
// that tests run the poll on a fake clock.
func PollDevice(ctx context.Context, c *Config, da *DeviceAuthResponse, sleep func(context.Context, time.Duration) error) (*Token, error) {
	return c.pollDevice(ctx, da, sleep)
}
