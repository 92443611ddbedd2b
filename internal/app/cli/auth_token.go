package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// tokenOptions holds the flags of `latch auth token`.
type tokenOptions struct {
	header bool // print an Authorization header line
}

// newTokenCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newTokenCmd(runF func(*tokenOptions) error) *cobra.Command {
	o := &tokenOptions{}
	c := &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token, refreshing it first if needed",
		Long: `Print a valid access token on stdout, refreshing it first if it has
expired or is about to. It never prints an expired token: when no valid
token can be had it fails with exit code 4 (log in again) or 5 (transient
failure; the credential was kept).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return o.run(cmd.Context(), a)
		},
	}
	c.Flags().BoolVar(&o.header, "header", false, "print an HTTP Authorization header line instead of the bare token")
	return c
}

func (o *tokenOptions) run(ctx context.Context, a *App) error {
	src, err := a.tokenSource(ctx)
	if err != nil {
		return err
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return err
	}
	if o.header {
		fmt.Fprintf(a.Stdout, "Authorization: %s\n", tok.Authorization())
		return nil
	}
	fmt.Fprintln(a.Stdout, tok.AccessToken)
	return nil
}
