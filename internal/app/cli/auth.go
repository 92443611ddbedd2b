package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/storekit"
)

func (a *App) newAuthCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "auth",
		Short: "Log in, log out, and show or use the stored credential",
		Args:  usageArgs(cobra.ArbitraryArgs),
		RunE:  groupRun,
	}
	c.AddCommand(a.newLoginCmd(nil), a.newStatusCmd(nil), a.newTokenCmd(nil), a.newLogoutCmd(nil), a.newSwitchCmd(nil),
		a.newSetupGitCmd(nil), a.newSetupDockerCmd(nil), a.newSetupKubectlCmd(nil))
	return c
}

// mask shows that a token exists and lets a person tell two apart,
// without revealing it.
func mask(tok string) string {
	if tok == "" {
		return ""
	}
	return "****" + storekit.Fingerprint(tok)
}

// when renders t for a person: absolute and relative to now.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.Local().Format(time.RFC3339), d)
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.RFC3339), -d)
}
