package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/config"
)

func (a *App) newSwitchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "switch ORG",
		Short: "Select the organization later commands act for",
		Long: `Select ORG as the organization (account) for the current host. You must
have logged in to it with ` + "`latch auth login --org ORG`" + `. With --host, that
host becomes the selected host too.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			org := args[0]
			host, err := a.Host()
			if err != nil {
				return err
			}
			err = a.updateConfig(cmd.Context(), func(cf *config.File) error {
				h := cf.Get(host)
				if h == nil || !slices.Contains(h.Orgs, org) {
					return &latch.LoginRequiredError{
						Key:  latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: org},
						Hint: "run `latch auth login --org " + org + "`",
					}
				}
				h.Org = org
				cf.Host = host
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Switched to org %s on %s.\n", org, host)
			return nil
		},
	}
}
