// Package devcmd is the latch-dev command: the dev server, the demo and a
// scriptable HTTP browser, kept apart from latch so that latch starts fast.
package devcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/app/demo"
	"github.com/latchdev/latch/oauthtest"
)

// Run runs latch-dev with args and returns the exit code: 0 ok, 1 failure,
// 2 usage.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "latch-dev",
		Short:         "The latch dev OAuth server, the demo, and a browser for scripts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage{err} })
	root.AddCommand(serverCmd(stdout), browseCmd(), demoCmd(stdout, stderr))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "latch-dev: %v\n", err)
	var u usage
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

type usage struct{ error }

func (u usage) Unwrap() error { return u.error }

func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := v(cmd, a); err != nil {
			return usage{err}
		}
		return nil
	}
}

func serverCmd(stdout io.Writer) *cobra.Command {
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
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 0 || port > 65535 {
				return usage{fmt.Errorf("--port %d: want 0-65535", port)}
			}
			if accessTTL < time.Second || refreshTTL < time.Second {
				return usage{errors.New("--access-ttl and --refresh-ttl must be at least 1s")}
			}
			if opts.RefreshIdle != 0 && opts.RefreshIdle < time.Second {
				return usage{errors.New("--refresh-idle must be 0 (off) or at least 1s")}
			}
			if opts.RotationGrace < 0 {
				return usage{errors.New("--rotation-grace must not be negative")}
			}
			if approveWait < 0 {
				return usage{errors.New("--device-approve-after must not be negative")}
			}
			opts.AccessTTL, opts.RefreshTTL, opts.DeviceApproveAfter = accessTTL, refreshTTL, approveWait
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			return oauthtest.Serve(cmd.Context(), opts, addr, stdout)
		},
	}
	f := c.Flags()
	f.IntVar(&port, "port", 0, "port to listen on; 0 picks a free one")
	f.DurationVar(&accessTTL, "access-ttl", time.Hour, "access token lifetime")
	f.DurationVar(&refreshTTL, "refresh-ttl", 24*time.Hour, "refresh token lifetime")
	f.DurationVar(&opts.RefreshIdle, "refresh-idle", 0, "refuse a refresh token unused for this long (a sliding idle window, sent as refresh_token_expires_in); 0 is off")
	f.BoolVar(&opts.AutoApprove, "auto-approve", false, "approve logins without showing a page")
	f.IntVar(&approveWait, "device-approve-after", 0, "approve a device code after N pending polls (0: a person approves)")
	f.StringSliceVar(&opts.Clients, "client", nil, "allowed client `ID`s (repeatable; default: any)")
	f.DurationVar(&opts.RotationGrace, "rotation-grace", 0, "accept a rotated refresh token again for this long (as Hydra's rotation_grace_period); 0 is strict")
	f.BoolVar(&opts.Registration, "registration", false, "serve dynamic client registration (RFC 7591) at /register, for public clients")
	f.Var(quirksFlag{&opts.Quirks}, "quirks", "behave as a real provider: a JSON `OBJECT` of oauthtest.Quirks, e.g. '{\"no_discovery\":true}' (docs/providers.md)")
	return c
}

func browseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "browse URL",
		Short: "Follow a login URL like a browser, approving on a dev server's page",
		Long: `browse GETs URL, follows redirects (to a loopback callback too) and clicks
Approve on a dev server's approve page. Use it as $BROWSER for headless logins
against the dev server: BROWSER="latch-dev browse" latch auth login.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			return oauthtest.Browse(ctx, a[0])
		},
	}
}

func demoCmd(stdout, stderr io.Writer) *cobra.Command {
	var o demo.Options
	c := &cobra.Command{
		Use:   "demo",
		Short: "Show latch at work against an embedded dev server",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout, o.Stderr = stdout, stderr
			// zitadel logs every rejected request; the demo rejects some on purpose.
			slog.SetDefault(slog.New(slog.DiscardHandler))
			return demo.Run(cmd.Context(), o)
		},
	}
	c.Flags().IntVar(&o.Procs, "procs", 16, "concurrent latch processes in the storm")
	c.Flags().IntVar(&o.Requests, "requests", 200, "concurrent requests in one process")
	return c
}

// quirksFlag reads --quirks as JSON.
type quirksFlag struct{ q *oauthtest.Quirks }

func (f quirksFlag) String() string {
	if f.q == nil {
		return ""
	}
	b, _ := json.Marshal(f.q)
	if string(b) == "{}" {
		return ""
	}
	return string(b)
}

func (f quirksFlag) Set(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(f.q)
}

func (quirksFlag) Type() string { return "json" }
