package e2e

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// TestSoak: 16 workers each run 200 `latch api` commands back to back
// while access tokens live one second, so refreshes and adoptions overlap
// all the time. No command fails and the server sees no reuse.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 3200 processes")
	}
	const workers, requests = 16, 200
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Second})
	e.login()
	var fails atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range requests {
				if r := e.run("api", "/v2/user"); r.code != 0 {
					if fails.Add(1) <= 3 {
						t.Errorf("worker %d request %d: %v", w, i, r)
					}
				}
			}
		})
	}
	wg.Wait()
	c := e.counters()
	t.Logf("%d requests: %d refreshes, %d resource 200s, %d 401s", workers*requests, c.RefreshSuccesses, c.Resource200, c.Resource401)
	if fails.Load() != 0 || c.ReuseDetections != 0 || c.FamiliesRevoked != 0 {
		t.Errorf("%d failures, %d reuses, %d families revoked; want 0", fails.Load(), c.ReuseDetections, c.FamiliesRevoked)
	}
	if c.Resource200 != workers*requests {
		t.Errorf("resource 200s = %d, want %d", c.Resource200, workers*requests)
	}
}
