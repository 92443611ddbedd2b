package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/chaos"
)

// TestChaos: 16 latch processes in a loop for 30 s against a strict
// server and 30 s against one with a rotation grace period, 1 s access
// tokens, random SIGKILL/SIGINT/SIGTERM and token-endpoint faults. No
// torn file, no hung process, no token in any output; at the strict
// server every lost session is explained by a lost answer; with a grace
// period none is lost. `go run ./bench/chaos` is the long run.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute")
	}
	for _, tt := range []struct {
		name  string
		grace time.Duration
	}{{"strict", 0}, {"grace", time.Minute}} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := chaos.Run(context.Background(), chaos.Options{
				Latch: latchBin, Env: []string{"BROWSER=" + os.Args[0], "LATCH_E2E_BROWSER=1"},
				Workers: 16, Duration: 30 * time.Second, Grace: tt.grace,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", rep.Markdown(tt.name))
			for _, m := range rep.LossMessages {
				t.Logf("a lost session began with: %s", m)
			}
			if rep.Torn != 0 || rep.Hung != 0 || rep.Leaks != 0 {
				t.Errorf("torn files %d, hung processes %d, outputs with a token %d; want 0, 0, 0", rep.Torn, rep.Hung, rep.Leaks)
			}
			if len(rep.Unexpected) > 0 {
				t.Errorf("unexpected exits: %q", rep.Unexpected)
			}
			if !rep.Explained(tt.grace > 0) {
				t.Errorf("sessions lost %d, reuse detected %d, answers lost %d, SIGKILLs %d: not explained by lost answers",
					rep.SessionsLost, rep.ReuseDetected, rep.AnswersLost, rep.KilledHard)
			}
			if rep.Refreshes < 10 || rep.Runs < 100 {
				t.Errorf("only %d refreshes in %d commands: the run did not exercise the refresh", rep.Refreshes, rep.Runs)
			}
		})
	}
}
