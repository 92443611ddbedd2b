package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *App) newTokenCmd() *cobra.Command {
	var header bool
	c := &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token, refreshing it first if needed",
		Long: `Print a valid access token on stdout, refreshing it first if it has
expired or is about to. It never prints an expired token: when no valid
token can be had it fails with exit code 4 (log in again) or 5 (transient
failure; the credential was kept).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := a.tokenSource(cmd.Context())
			if err != nil {
				return err
			}
			tok, err := src.Token(cmd.Context())
			if err != nil {
				return err
			}
			if header {
				fmt.Fprintf(a.Stdout, "Authorization: %s\n", tok.Authorization())
				return nil
			}
			fmt.Fprintln(a.Stdout, tok.AccessToken)
			return nil
		},
	}
	c.Flags().BoolVar(&header, "header", false, "print an HTTP Authorization header line instead of the bare token")
	return c
}
