package cli

import (
	"fmt"
	"slices"
	"strings"

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
			if strings.TrimSpace(org) == "" {
				known := "none yet"
				if h := a.hostEntry(host); len(h.Orgs) > 0 {
					var names []string
					for _, o := range h.Orgs {
						if o != "" {
							names = append(names, o)
						}
					}
					if len(names) > 0 {
						known = strings.Join(names, ", ")
					}
				}
				return usageError(fmt.Errorf("an empty organization name; the organizations logged in to on %s: %s", host, known))
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
