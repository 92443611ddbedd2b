package e2e

import (
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// TestStorm: 32 `latch api` processes start at once on an expired token,
// 20 trials (LESSONS 1). Every process succeeds, each trial makes exactly
// one refresh, and the server detects no reuse. Even trials expire the
// token at the server only (every process meets a 401); odd trials expire
// it on the client's clock too (every process refreshes early).
func TestStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 640 processes")
	}
	const procs, trials = 32, 20
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	e.login()
	for trial := range trials {
		e.srv.ExpireAccessTokens()
		if trial%2 == 1 {
			e.expireLocally()
		}
		before := e.counters()
		res := e.runMany(procs, "api", "/v2/user")
		after := e.counters()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("trial %d, process %d: %v", trial, i, r)
			}
			mustContain(t, "stdout", r.stdout, `"login":"dev"`)
		}
		if n := after.RefreshSuccesses - before.RefreshSuccesses; n != 1 {
			t.Fatalf("trial %d: %d refreshes, want 1", trial, n)
		}
		if after.ReuseDetections != 0 || after.FamiliesRevoked != 0 {
			t.Fatalf("trial %d: reuse detections %d, families revoked %d; want 0",
				trial, after.ReuseDetections, after.FamiliesRevoked)
		}
	}
}
