package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/config"
)

// switchOptions are the arguments of `latch auth switch`.
type switchOptions struct {
	org    string
	hasOrg bool
}

func (a *App) newSwitchCmd() *cobra.Command {
	o := &switchOptions{}
	return &cobra.Command{
		Use:   "switch [ORG]",
		Short: "Select the organization later commands act for",
		Long: `Select ORG as the organization (account) for the current host. You must
have logged in to it with ` + "`latch auth login --org ORG`" + `. With --host, that
host becomes the selected host too. Without ORG, list the organizations
logged in to on the host, the selected one marked with *.`,
		Example: `  latch auth switch
  latch auth switch acme
  latch --host https://auth.example.com auth switch acme`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.orgNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.org, o.hasOrg = args[0], true
			}
			return a.switchOrg(cmd.Context(), o)
		},
	}
}

// orgNames are the named organizations logged in to on the host.
func (a *App) orgNames() []string {
	host, err := a.Host()
	if err != nil {
		return nil
	}
	var names []string
	for _, o := range a.hostEntry(host).Orgs {
		if o != "" {
			names = append(names, o)
		}
	}
	return names
}

func (a *App) switchOrg(ctx context.Context, o *switchOptions) error {
	host, err := a.Host()
	if err != nil {
		return err
	}
	if !o.hasOrg {
		return a.listOrgs(host)
	}
	if strings.TrimSpace(o.org) == "" {
		known := "none yet"
		if names := a.orgNames(); len(names) > 0 {
			known = strings.Join(names, ", ")
		}
		return usageError(fmt.Errorf("an empty organization name; the organizations logged in to on %s: %s", host, known))
	}
	err = a.updateConfig(ctx, func(cf *config.File) error {
		h := cf.Get(host)
		if h == nil || !slices.Contains(h.Orgs, o.org) {
			return &latch.LoginRequiredError{
				Key:  latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: o.org},
				Hint: "run `latch auth login --org " + o.org + "`",
			}
		}
		h.Org = o.org
		cf.Host = host
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "Switched to org %s on %s.\n", o.org, host)
	return nil
}

// listOrgs prints the accounts logged in to on host, one per line, the
// selected one marked; the default account is "(default)".
func (a *App) listOrgs(host string) error {
	h := a.hostEntry(host)
	if len(h.Orgs) == 0 {
		return &latch.LoginRequiredError{Key: latch.Key{Issuer: host, ClientID: a.ClientID(host)}, Hint: "run `latch auth login` (with --org ORG for an organization)"}
	}
	selected := a.Org(host)
	for _, org := range h.Orgs {
		mark, name := "  ", org
		if org == selected {
			mark = "* "
		}
		if org == "" {
			name = "(default)"
		}
		fmt.Fprintln(a.Stdout, mark+name)
	}
	if len(a.orgNames()) == 0 {
		return nil
	}
	fmt.Fprintln(a.Stderr, "Select one with latch auth switch ORG.")
	return nil
}
