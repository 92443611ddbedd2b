//go:build !latch_nodevserver

package cli

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/oauthtest"
)

func (a *App) newDevCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dev",
		Short: "Tools for trying latch locally",
		Args:  usageArgs(cobra.ArbitraryArgs),
		RunE:  groupRun,
	}
	c.AddCommand(a.newDevServerCmd())
	return c
}

func (a *App) newDevServerCmd() *cobra.Command {
	var (
		port        int
		opts        oauthtest.Options
		accessTTL   time.Duration
		refreshTTL  time.Duration
		approveWait int
	)
	c := &cobra.Command{
		Use:   "server",
		Short: "Run a local OAuth 2.0 server with a REST and GraphQL API",
		Long: `Run the dev authorization server and API on 127.0.0.1. The first line
on stdout is its base URL; login instructions follow. Ctrl-C stops it.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 0 || port > 65535 {
				return usageError(fmt.Errorf("--port %d: want 0-65535", port))
			}
			if accessTTL < time.Second || refreshTTL < time.Second {
				return usageError(errors.New("--access-ttl and --refresh-ttl must be at least 1s"))
			}
			if approveWait < 0 {
				return usageError(errors.New("--device-approve-after must not be negative"))
			}
			opts.AccessTTL, opts.RefreshTTL, opts.DeviceApproveAfter = accessTTL, refreshTTL, approveWait
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			return oauthtest.Serve(cmd.Context(), opts, addr, a.Stdout)
		},
	}
	f := c.Flags()
	f.IntVar(&port, "port", 0, "port to listen on; 0 picks a free one")
	f.DurationVar(&accessTTL, "access-ttl", time.Hour, "access token lifetime")
	f.DurationVar(&refreshTTL, "refresh-ttl", 24*time.Hour, "refresh token lifetime")
	f.BoolVar(&opts.AutoApprove, "auto-approve", false, "approve logins without showing a page")
	f.IntVar(&approveWait, "device-approve-after", 0, "approve a device code after N pending polls (0: a person approves)")
	f.StringSliceVar(&opts.Clients, "client", nil, "allowed client `ID`s (repeatable; default: any)")
	return c
}
