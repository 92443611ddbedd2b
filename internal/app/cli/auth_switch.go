package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/app/config"
)

// switchOptions are the arguments of `latch auth switch`.
type switchOptions struct {
	org    string
	hasOrg bool
	// def: select the default account (no org), as --default or "(default)".
	def bool
	// prompt: without ORG, ask which one (stdin and stderr are a terminal).
	prompt bool
}

// newSwitchCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newSwitchCmd(runF func(*switchOptions) error) *cobra.Command {
	o := &switchOptions{}
	c := &cobra.Command{
		Use:   "switch [ORG]",
		Short: "Select the organization later commands act for",
		Long: `Select ORG as the organization (account) for the current host. You must
have logged in to it with ` + "`latch auth login --org ORG`" + `. With --host, that
host becomes the selected host too. --default (or the name "(default)")
selects the account logged in to without --org. Without ORG, list the
accounts logged in to on the host, the selected one marked with *; on a
terminal, ask which one to select.

The helpers set up with setup-git, setup-docker and setup-kubectl keep the
account they were set up for; switching does not change them.`,
		Example: `  latch auth switch
  latch auth switch acme
  latch auth switch --default
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
				if o.def {
					return usageError(errors.New("pass ORG or --default, not both"))
				}
			}
			if o.org == defaultLabel {
				o.org, o.def = "", true
			}
			if o.def {
				o.org, o.hasOrg = "", true
			}
			o.prompt = a.canPrompt()
			if runF != nil {
				return runF(o)
			}
			return a.switchOrg(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&o.def, "default", false, "select the default account (the one logged in to without --org)")
	return c
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
	if !o.hasOrg && o.prompt && len(a.hostEntry(host).Orgs) > 1 {
		org, ok, err := a.pickOrg(host)
		if err != nil || !ok {
			return err
		}
		return a.selectOrg(ctx, host, org)
	}
	if !o.hasOrg {
		return a.listOrgs(host)
	}
	if !o.def && strings.TrimSpace(o.org) == "" {
		return usageError(fmt.Errorf("an empty organization name; the accounts logged in to on %s: %s (use --default for the default one)", host, a.knownAccounts(host)))
	}
	if h := a.hostEntry(host); len(h.Orgs) > 0 && !slices.Contains(h.Orgs, o.org) {
		// A typo, most likely: name what there is (exit 2).
		return usageError(fmt.Errorf("no account %s on %s; the accounts logged in to: %s; to log in to a new one, run `%s`",
			orgLabel(o.org), host, a.knownAccounts(host), a.loginCommand(o.org)))
	}
	return a.selectOrg(ctx, host, o.org)
}

// knownAccounts lists the accounts logged in to on host, for a message.
func (a *App) knownAccounts(host string) string {
	var names []string
	for _, o := range a.hostEntry(host).Orgs {
		names = append(names, shellArg(orgLabel(o)))
	}
	if len(names) == 0 {
		return "none yet"
	}
	return strings.Join(names, ", ")
}

// selectOrg makes org, which must be logged in to, the selected one.
func (a *App) selectOrg(ctx context.Context, host, org string) error {
	err := a.updateConfig(ctx, func(cf *config.File) error {
		h := cf.Get(host)
		if h == nil || !slices.Contains(h.Orgs, org) {
			return &latch.LoginRequiredError{
				Key:  latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: org},
				Hint: "run `" + a.loginCommand(org) + "`",
			}
		}
		h.Org = org
		cf.Host = host
		return nil
	})
	if err != nil {
		return err
	}
	if org == "" {
		fmt.Fprintf(a.Stderr, "Switched to the default account on %s.\n", host)
	} else {
		fmt.Fprintf(a.Stderr, "Switched to org %s on %s.\n", org, host)
	}
	return nil
}

// pickOrg asks on the terminal which account to select, as gh's
// interactive prompts do: a numbered list, the selected one marked, and
// a number to type; an empty answer keeps the selection (ok false).
func (a *App) pickOrg(host string) (org string, ok bool, err error) {
	orgs := a.hostEntry(host).Orgs
	selected := a.Org(host)
	fmt.Fprintf(a.Stderr, "Accounts on %s:\n", host)
	for i, o := range orgs {
		mark := " "
		if o == selected {
			mark = "*"
		}
		fmt.Fprintf(a.Stderr, "%s %d) %s\n", mark, i+1, orgLabel(o))
	}
	in := bufio.NewReader(a.Stdin)
	for {
		fmt.Fprintf(a.Stderr, "Switch to [1-%d, Enter keeps %s]: ", len(orgs), orgLabel(selected))
		line, err := in.ReadString('\n')
		answer := strings.TrimSpace(line)
		if answer == "" {
			if err != nil && err != io.EOF {
				return "", false, err
			}
			fmt.Fprintln(a.Stderr, "Kept", orgLabel(selected)+".")
			return "", false, nil
		}
		if n, perr := strconv.Atoi(answer); perr == nil && n >= 1 && n <= len(orgs) {
			return orgs[n-1], true, nil
		}
		if i := slices.Index(orgs, answer); i >= 0 {
			return orgs[i], true, nil
		}
		if err != nil {
			return "", false, usageError(fmt.Errorf("no account %q on %s", answer, host))
		}
		fmt.Fprintf(a.Stderr, "%q is not one of them.\n", answer)
	}
}

// defaultLabel names the account logged in to without --org.
const defaultLabel = "(default)"

// orgLabel names an account for a person: the org, or "(default)".
func orgLabel(org string) string {
	if org == "" {
		return defaultLabel
	}
	return org
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
		mark := "  "
		if org == selected {
			mark = "* "
		}
		fmt.Fprintln(a.Stdout, mark+orgLabel(org))
	}
	if len(a.orgNames()) == 0 {
		return nil
	}
	fmt.Fprintln(a.Stderr, "Select one with `latch auth switch ORG`, or `latch auth switch --default` for (default).")
	return nil
}
