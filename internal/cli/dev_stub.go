//go:build latch_nodevserver

package cli

import "github.com/spf13/cobra"

// newDevCmd is absent from builds tagged latch_nodevserver, which leave
// the dev server (and its OAuth engine) out of the binary.
func (a *App) newDevCmd() *cobra.Command {
	return &cobra.Command{Use: "dev", Hidden: true, Short: "not in this build",
		RunE: func(*cobra.Command, []string) error {
			return usageError(errorString("this latch was built without the dev server"))
		}}
}

type errorString string

func (e errorString) Error() string { return string(e) }
