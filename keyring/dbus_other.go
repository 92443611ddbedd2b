//go:build !linux

package keyring

import (
	"context"
	"time"
)

func busCheck(string) error { return nil }

// probePlatform has no plumbing to check outside Linux; Probe's write test
// does the work.
func probePlatform(context.Context, time.Duration) Health { return Health{OK: true} }

func classifyPlatform(error) (Reason, string, bool) { return "", "", false }
