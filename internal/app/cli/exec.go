package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

// Exit statuses of a command that cannot run, as a POSIX shell gives them.
const (
	ExitCannotRun = 126
	ExitNotFound  = 127
)

// execOptions are the flags of `latch exec`.
type execOptions struct {
	env, headerEnv string
	warnWithin     time.Duration
	argv           []string

	// Supervisor mode (exec_supervise.go).
	restart   bool
	signal    string
	sig       os.Signal
	tokenFile string
	grace     time.Duration
}

// newExecCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newExecCmd(runF func(*execOptions) error) *cobra.Command {
	o := &execOptions{}
	c := &cobra.Command{
		Use:   "exec [flags] -- CMD [ARGS...]",
		Short: "Run a command with a fresh access token in its environment",
		Long: `Run CMD with a valid access token (refreshed first if needed) in the
environment variable --env (default LATCH_ACCESS_TOKEN), and optionally a
whole "Authorization: Bearer …" header line in --header-env.

latch becomes CMD (the process is replaced), so signals reach CMD directly
and latch exits with CMD's status: 127 when CMD is not found, 126 when it
cannot be run, as a shell would.

CMD sees the token it was started with and cannot see a later refresh.
When the token has less than --warn-within left, latch says so on stderr;
for a tool that runs for hours, supervise it (below) or use latch proxy.

Supervisor mode keeps CMD supplied: latch stays, runs CMD as its child,
refreshes as latch agent does, and on every new token either restarts CMD
with it (--restart: SIGTERM, then SIGKILL after --restart-grace) or
writes --token-file and sends CMD --signal (CMD re-reads the file named
in $LATCH_TOKEN_FILE). Signals are passed to CMD, and latch exits with
CMD's status (128 + the signal that killed it). If the grant is revoked,
latch stops CMD, empties the token file and exits 4.`,
		Example: `  latch exec -- sh -c 'curl -H "Authorization: Bearer $LATCH_ACCESS_TOKEN" https://api.example.com/user'
  latch exec --env GITHUB_TOKEN -- terraform plan
  latch exec --header-env AUTH_HEADER -- sh -c 'curl -H "$AUTH_HEADER" https://api.example.com/user'
  latch exec --restart -- ./long-running-exporter
  latch exec --signal HUP --token-file /run/user/1000/token -- ./server --token-file /run/user/1000/token`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(errors.New("no command given: latch exec [flags] -- CMD [ARGS...]"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.argv = args
			if runF != nil {
				return runF(o)
			}
			return a.exec(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.env, "env", "LATCH_ACCESS_TOKEN", "environment variable `NAME` that holds the access token")
	f.StringVar(&o.headerEnv, "header-env", "", "also put \"Authorization: Bearer TOKEN\" in the environment variable `NAME`")
	f.DurationVar(&o.warnWithin, "warn-within", 10*time.Minute, "warn on stderr when the token expires sooner than this")
	f.BoolVar(&o.restart, "restart", false, "stay as CMD's supervisor and restart it with each new token")
	f.StringVar(&o.signal, "signal", "", "stay as CMD's supervisor and send it `NAME` (HUP, USR1, …) after each new token is written to --token-file")
	f.StringVar(&o.tokenFile, "token-file", "", "with --restart or --signal: keep the access token in the file at `PATH` too ($"+EnvTokenFile+" names it to CMD)")
	f.DurationVar(&o.grace, "restart-grace", 10*time.Second, "with --restart: how long CMD has to exit after SIGTERM before SIGKILL")
	return c
}

func (a *App) exec(ctx context.Context, o *execOptions) error {
	for _, name := range []string{o.env, o.headerEnv} {
		if name != "" && !validEnvName(name) {
			return usageError(fmt.Errorf("%q is not an environment variable name", name))
		}
	}
	if o.env == "" {
		return usageError(errors.New("--env must name a variable"))
	}
	supervised, err := o.checkSupervise()
	if err != nil {
		return usageError(err)
	}
	path, err := exec.LookPath(o.argv[0])
	if err != nil {
		code := ExitNotFound
		if errors.Is(err, fs.ErrPermission) {
			code = ExitCannotRun
		}
		return &ExitError{Code: code, Err: fmt.Errorf("exec: %s: %w", o.argv[0], unwrapExecError(err))}
	}
	if supervised {
		return a.supervise(ctx, o, path)
	}
	tok, err := a.freshToken(ctx)
	if err != nil {
		return err
	}
	if !tok.Expiry.IsZero() {
		if left := time.Until(tok.Expiry); left < o.warnWithin {
			fmt.Fprintf(a.Stderr, "latch exec: the access token expires in %s, and %s cannot see a refresh; for a long-running tool use `latch exec --restart` or `latch proxy`.\n",
				left.Round(time.Second), o.argv[0])
		}
	}
	env := withEnv(os.Environ(), o.env, tok.AccessToken)
	if o.headerEnv != "" {
		env = withEnv(env, o.headerEnv, "Authorization: "+tok.Authorization())
	}
	// Anything else of this process (a refresh) is finished: the token
	// was saved before Token returned.
	err = execve(path, o.argv, env)
	code := ExitCannotRun
	if errors.Is(err, fs.ErrNotExist) {
		code = ExitNotFound
	}
	return &ExitError{Code: code, Err: fmt.Errorf("exec: %s: %w", o.argv[0], err)}
}

// checkSupervise checks the supervisor flags and reports whether they
// ask for supervisor mode.
func (o *execOptions) checkSupervise() (bool, error) {
	switch {
	case o.restart && o.signal != "":
		return false, errors.New("--restart and --signal: choose one (restart CMD, or signal it to re-read --token-file)")
	case o.signal != "" && o.tokenFile == "":
		return false, errors.New("--signal needs --token-file: CMD's environment cannot change, so it re-reads the file")
	case o.tokenFile != "" && !o.restart && o.signal == "":
		return false, errors.New("--token-file is for supervisor mode: add --restart or --signal (or use latch agent --token-file)")
	case o.grace <= 0:
		return false, errors.New("--restart-grace must be positive")
	case o.signal != "":
		sig, err := parseSignal(o.signal)
		o.sig = sig
		return err == nil, err
	}
	return o.restart, nil
}

// freshToken returns a valid access token through the refresh transaction.
func (a *App) freshToken(ctx context.Context) (*latch.Token, error) {
	src, err := a.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	return src.Token(ctx)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// withEnv returns env with name set to value, replacing any earlier one.
func withEnv(env []string, name, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

func unwrapExecError(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}
