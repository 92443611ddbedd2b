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
for a tool that runs for hours, use latch proxy instead.`,
		Example: `  latch exec -- sh -c 'curl -H "Authorization: Bearer $LATCH_ACCESS_TOKEN" https://api.example.com/user'
  latch exec --env GITHUB_TOKEN -- terraform plan
  latch exec --header-env AUTH_HEADER -- sh -c 'curl -H "$AUTH_HEADER" https://api.example.com/user'`,
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
	path, err := exec.LookPath(o.argv[0])
	if err != nil {
		code := ExitNotFound
		if errors.Is(err, fs.ErrPermission) {
			code = ExitCannotRun
		}
		return &ExitError{Code: code, Err: fmt.Errorf("exec: %s: %w", o.argv[0], unwrapExecError(err))}
	}
	tok, err := a.freshToken(ctx)
	if err != nil {
		return err
	}
	if !tok.Expiry.IsZero() {
		if left := time.Until(tok.Expiry); left < o.warnWithin {
			fmt.Fprintf(a.Stderr, "latch exec: the access token expires in %s, and %s cannot see a refresh; for a long-running tool use `latch proxy`.\n",
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
