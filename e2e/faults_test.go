package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// TestFaultSurvival drives a refresh into each of the dev server's
// token-endpoint faults. Transient faults keep the refresh token (exit 5
// at worst, then the next command succeeds); a lost answer after the
// rotation ends in a clear re-login message, with no panic and no loop.
func TestFaultSurvival(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults oauthtest.Faults
		env    []string
		// wantFirst is the first command's exit code; -1 allows 0 or 5.
		wantFirst int
		stderr    string
	}{
		{name: "503 x3 then success", faults: oauthtest.Faults{Fail503: 3}, wantFirst: -1},
		// A lost answer is retried once, at once: one drop costs nothing.
		{name: "connection dropped once", faults: oauthtest.Faults{DropBefore: 1}, wantFirst: 0},
		{name: "connection dropped twice", faults: oauthtest.Faults{DropBefore: 2}, wantFirst: 5, stderr: "the stored credential was kept"},
		{name: "latency past the deadline", faults: oauthtest.Faults{Latency: 3 * time.Second},
			env: []string{"LATCH_TOKEN_TIMEOUT=1s"}, wantFirst: 5, stderr: "no answer within 1s"},
		{name: "HTML error page once", faults: oauthtest.Faults{HTMLError: 1}, wantFirst: 0},
		{name: "HTML error page twice", faults: oauthtest.Faults{HTMLError: 2}, wantFirst: 5, stderr: "text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			e.login()
			kept := e.stored().RefreshToken
			e.srv.ExpireAccessTokens()
			e.srv.SetFaults(tt.faults)
			e.environ = append(e.environ, tt.env...)

			r := e.run("api", "/v2/user")
			switch {
			case tt.wantFirst == -1 && (r.code == 0 || r.code == 5):
			case r.code != tt.wantFirst:
				t.Fatalf("first command: %v; want exit %d", r, tt.wantFirst)
			}
			if r.code != 0 {
				mustContain(t, "stderr", r.stderr, tt.stderr)
				if got := e.stored().RefreshToken; got != kept {
					t.Fatal("the refresh token was not kept after a transient failure")
				}
			}
			e.srv.SetFaults(oauthtest.Faults{})
			if r.code != 0 {
				if r := e.run("api", "/v2/user"); r.code != 0 {
					t.Fatalf("after the fault cleared: %v", r)
				}
			}
			c := e.counters()
			if c.RefreshSuccesses != 1 || c.InvalidGrants != 0 || c.ReuseDetections != 0 {
				t.Errorf("counters: %d refreshes, %d invalid_grant, %d reuses; want 1, 0, 0",
					c.RefreshSuccesses, c.InvalidGrants, c.ReuseDetections)
			}
		})
	}
}

// TestAnswerLostAfterRotation: the server rotates the refresh token but the
// answer never arrives. Latch presents the same grant once more, at once,
// under the lock (the promise issue, item 12). A strict server sees reuse
// and revokes the family: latch says the answer was lost and to log in
// again, exits 4, and sends exactly two token requests (no loop). A server
// with a rotation grace period answers the retry: the session survives.
func TestAnswerLostAfterRotation(t *testing.T) {
	t.Run("strict server", func(t *testing.T) {
		e := newEnv(t, oauthtest.Options{})
		e.login()
		e.srv.ExpireAccessTokens()
		e.srv.SetFaults(oauthtest.Faults{DropAfter: 1})
		before := e.counters().TokenCalls["refresh_token"]
		r := e.run("api", "/v2/user")
		if r.code != 4 {
			t.Fatalf("first command: %v; want exit 4", r)
		}
		mustContain(t, "stderr", r.stderr, "answer to the first request was lost")
		mustContain(t, "stderr", r.stderr, "latch auth login")
		if n := e.counters().TokenCalls["refresh_token"] - before; n != 2 {
			t.Errorf("sent %d refresh requests, want 2 (one retry)", n)
		}
		if c := e.counters(); c.ReuseDetections != 1 {
			t.Errorf("reuse detections = %d, want 1", c.ReuseDetections)
		}
		if r := e.run("auth", "token"); r.code != 4 {
			t.Errorf("auth token after the family was revoked: %v; want exit 4", r)
		}
	})
	t.Run("grace period", func(t *testing.T) {
		e := newEnv(t, oauthtest.Options{RotationGrace: time.Minute})
		e.login()
		e.srv.ExpireAccessTokens()
		e.srv.SetFaults(oauthtest.Faults{DropAfter: 1})
		if r := e.run("api", "/v2/user"); r.code != 0 {
			t.Fatalf("first command: %v; want exit 0", r)
		}
		e.srv.ExpireAccessTokens()
		if r := e.run("api", "/v2/user"); r.code != 0 {
			t.Fatalf("after the next expiry: %v; want exit 0", r)
		}
		c := e.counters()
		if c.GraceReuses != 1 || c.ReuseDetections != 0 || c.FamiliesRevoked != 0 {
			t.Errorf("grace reuses %d, reuse detections %d, families revoked %d; want 1, 0, 0",
				c.GraceReuses, c.ReuseDetections, c.FamiliesRevoked)
		}
	})
}

// TestKilledLockHolder: the process holding the refresh lock is killed
// with SIGKILL while its refresh is in flight. The kernel drops its lock;
// the processes waiting behind it take the lock in turn, one refreshes,
// the rest adopt, and the store is intact.
func TestKilledLockHolder(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	e.login()
	e.srv.ExpireAccessTokens()
	e.srv.SetFaults(oauthtest.Faults{Latency: time.Minute})

	holder := e.command("api", "/v2/user")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	for e.counters().TokenCalls["refresh_token"] == 0 {
		time.Sleep(10 * time.Millisecond) // the holder's refresh reached the server
	}
	waiters := make(chan []result, 1)
	go func() { waiters <- e.runMany(8, "api", "/v2/user") }()
	time.Sleep(500 * time.Millisecond) // let them queue on the lock
	e.srv.SetFaults(oauthtest.Faults{})
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()

	for i, r := range <-waiters {
		if r.code != 0 {
			t.Errorf("waiter %d: %v", i, r)
		}
	}
	c := e.counters()
	if c.RefreshSuccesses != 1 || c.ReuseDetections != 0 {
		t.Errorf("counters: %d refreshes, %d reuses; want 1, 0", c.RefreshSuccesses, c.ReuseDetections)
	}
	if tok := e.stored(); tok.Generation != 1 {
		t.Errorf("stored generation = %d, want 1", tok.Generation)
	}
}
