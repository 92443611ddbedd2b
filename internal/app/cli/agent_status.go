package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/agent"
	"github.com/latchdev/latch/filelock"
	"github.com/latchdev/latch/internal/credfile"
)

// agentStatus is what a running agent tells `auth status`, in
// agents/<credential>.json beside its lock. It holds no secret.
type agentStatus struct {
	PID          int        `json:"pid"`
	Started      time.Time  `json:"started"`
	LastRefresh  *time.Time `json:"last_refresh,omitempty"`
	NextWake     *time.Time `json:"next_wake,omitempty"`
	Failures     int        `json:"failures,omitempty"`
	RefreshLimit *time.Time `json:"refresh_limit,omitempty"` // the refresh token's end, which refreshing does not move
	Sinks        []string   `json:"sinks"`

	path string
}

func statusPath(dir string, k latch.Key) string {
	return filepath.Join(dir, credfile.Hash(k)+".json")
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// record writes st with the schedule s, replacing the file atomically.
func (st *agentStatus) record(s agent.Schedule) {
	st.LastRefresh, st.NextWake, st.RefreshLimit = optTime(s.Last), optTime(s.Next), optTime(s.Limit)
	st.Failures = s.Failures
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(st.path), ".status.*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), st.path) != nil {
		_ = os.Remove(tmp.Name())
	}
}

func (st *agentStatus) remove() { _ = os.Remove(st.path) }

func readStatus(path string) *agentStatus {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var st agentStatus
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return &st
}

// runningAgent returns the status of the agent that keeps k alive, or nil
// when none runs (its lock is free, whatever file a killed one left).
func (a *App) runningAgent(k latch.Key) *agentStatus {
	dir, err := a.agentsDir()
	if err != nil {
		return nil
	}
	if _, err := os.Stat(statusPath(dir, k)); err != nil {
		return nil
	}
	unlock, free, err := filelock.Locker{Dir: dir}.TryLock(k)
	if err != nil {
		return nil
	}
	if free {
		unlock()
		return nil
	}
	return readStatus(statusPath(dir, k))
}

// printAgent prints the agent lines of `auth status`.
func printAgent(w io.Writer, st *agentStatus, now time.Time) {
	if st == nil {
		return
	}
	last, next := "none yet", "none (nothing expires)"
	if st.LastRefresh != nil {
		last = when(*st.LastRefresh, now)
	}
	if st.NextWake != nil {
		next = when(*st.NextWake, now)
	}
	fmt.Fprintf(w, "    agent: pid %d keeps it alive; last refresh %s, next %s\n", st.PID, last, next)
	if st.Failures > 0 {
		fmt.Fprintf(w, "    agent: the last %d refreshes failed; the credential is kept and retried\n", st.Failures)
	}
	if st.RefreshLimit != nil {
		fmt.Fprintf(w, "    warning: the refresh token stops working %s and refreshing does not extend it; log in again before then\n", when(*st.RefreshLimit, now))
	}
}
