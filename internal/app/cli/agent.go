package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/agent"
	"github.com/latchdev/latch/filelock"
)

// agentOptions are the flags of `latch agent`.
type agentOptions struct {
	keepAlive  time.Duration
	tokenFiles []string
	templates  []string // SRC=DEST
	socket     string
	mode       string
	owner      string
	inPlace    bool
}

// newAgentCmd returns the command; runF, when set, gets the parsed
// options instead of running it (for tests, as gh does).
func (a *App) newAgentCmd(runF func(*agentOptions) error) *cobra.Command {
	o := &agentOptions{}
	c := &cobra.Command{
		Use:   "agent [flags]",
		Short: "Keep the login alive while nobody calls, and hand fresh tokens to tools that read one once",
		Long: `Run in the foreground for the selected host and org: refresh the access
token before it expires, and the refresh token before the server's idle
window lapses (--keep-alive, or what the server says in
refresh_token_expires_in), and deliver every access token to the sinks
given: token files (replaced atomically, or rewritten in place for a file
bind-mounted into a container), files rendered from templates, and a Unix
socket that answers GET /token and GET /token.json to this user only. No
sink ever holds the refresh token.

The agent refreshes through the same lock and compare-and-swap as every
other latch process: with it running, other commands and a second agent
never spend a refresh token twice. While the server is down it backs off
and keeps the credential; when the server revokes the grant it empties
the sinks, says so, and exits 4. Ctrl-C or SIGTERM stops it (exit 0).

Templates are Go text/template files over .AccessToken, .TokenType,
.Expiry and .Authorization; {{json .AccessToken}} quotes as JSON.

See "latch agent install" to run it as a systemd user service or a launchd
agent, and "latch exec --restart" to supervise one program.`,
		Example: `  latch agent --keep-alive 12h
  latch agent --token-file /run/user/1000/api-token
  latch agent --token-file ./mounted/token --in-place --token-file-mode 0640
  latch agent --template netrc.tmpl=$HOME/.netrc --socket $XDG_RUNTIME_DIR/latch.sock`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return a.runAgent(cmd.Context(), o)
		},
	}
	o.flags(c)
	c.AddCommand(a.newAgentInstallCmd(nil))
	return c
}

// flags defines the agent's flags on c; `agent install` has the same.
func (o *agentOptions) flags(c *cobra.Command) {
	f := c.Flags()
	f.DurationVar(&o.keepAlive, "keep-alive", 0, "refresh at least this often, so a refresh token that lapses when unused stays alive (default: learnt from the server)")
	f.StringArrayVar(&o.tokenFiles, "token-file", nil, "keep the access token in the file at `PATH` (repeatable)")
	f.StringArrayVar(&o.templates, "template", nil, "render the template file SRC to DEST on every token (`SRC=DEST`, repeatable)")
	f.StringVar(&o.socket, "socket", "", "answer GET /token and /token.json on a Unix socket at `PATH`, to this user only")
	f.StringVar(&o.mode, "token-file-mode", "0600", "file `MODE` of token files and template outputs (octal)")
	f.StringVar(&o.owner, "token-file-owner", "", "give token files and template outputs to `UID[:GID]` (a user or group name works too; needs the privilege)")
	f.BoolVar(&o.inPlace, "in-place", false, "rewrite files in place (for a file bind-mounted into a container) instead of replacing them")
}

func (a *App) runAgent(ctx context.Context, o *agentOptions) error {
	if a.StaticToken() {
		return usageError(fmt.Errorf("%s is set: latch agent keeps a stored login alive, not a static token; unset it", EnvToken))
	}
	src, sc, err := a.storedSource(ctx)
	if err != nil {
		return err
	}
	a.src = src
	logf := func(format string, args ...any) {
		fmt.Fprintf(a.Stderr, "%s latch agent: %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	_, err = src.Token(ctx)
	if ctx.Err() != nil {
		logf("stopped") // a stop before the first token is a stop, not a failure
		return nil
	}
	if err != nil && exitCode(err) != ExitTransient {
		return err // nothing to keep alive; a server that is down is waited for
	}
	st, release, err := a.claimAgent(ctx, src.Key)
	if err == nil {
		defer release()
	}
	if ctx.Err() != nil {
		logf("stopped")
		return nil
	}
	if err != nil {
		return err
	}
	sinks, closeSinks, err := o.sinks()
	if err != nil {
		return usageError(err)
	}
	defer closeSinks()
	st.Sinks = make([]string, len(sinks))
	for i, s := range sinks {
		st.Sinks[i] = s.String()
	}
	host, _ := a.Host()
	logf("keeping the login for %s%s alive (pid %d, store %s); %s", host, orgSuffix(a.Org(host)), os.Getpid(), sc.kind, sinkList(st.Sinks))
	ag := &agent.Agent{Source: src, Sinks: sinks, KeepAlive: o.keepAlive, Logf: logf,
		OnSchedule: func(s agent.Schedule) {
			st.record(s)
			if !s.Next.IsZero() {
				logf("next wake %s", s.Next.Local().Format(time.RFC3339))
			}
		}}
	if err := ag.Run(ctx); err != nil {
		return err
	}
	logf("stopped")
	return nil
}

func sinkList(names []string) string {
	if len(names) == 0 {
		return "no sinks (keep-alive only)"
	}
	return "sinks: " + strings.Join(names, ", ")
}

// sinks builds the sinks the flags ask for, each checked now so that a
// mistake is an error before the agent starts, not at the first rotation.
func (o *agentOptions) sinks() ([]agent.Sink, func(), error) {
	mode, owner, err := o.fileAttrs()
	if err != nil {
		return nil, nil, err
	}
	var sinks []agent.Sink
	var sock *agent.Socket
	closeAll := func() {
		if sock != nil {
			_ = sock.Close()
		}
	}
	add := func(path string, render func(*latch.Token) ([]byte, error)) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		f := &agent.File{Path: abs, Mode: mode, Owner: owner, InPlace: o.inPlace, Render: render}
		if err := f.Check(); err != nil {
			return err
		}
		sinks = append(sinks, f)
		return nil
	}
	for _, p := range o.tokenFiles {
		if err := add(p, nil); err != nil {
			return nil, nil, fmt.Errorf("--token-file: %w", err)
		}
	}
	for _, spec := range o.templates {
		src, dest, ok := strings.Cut(spec, "=")
		if !ok || src == "" || dest == "" {
			return nil, nil, fmt.Errorf("--template %q: give SRC=DEST (a template file and the file to render it to)", spec)
		}
		text, err := os.ReadFile(src)
		if err != nil {
			return nil, nil, fmt.Errorf("--template: the template %s: %w", src, unwrapFSErr(err))
		}
		render, err := agent.ParseTemplate(filepath.Base(src), string(text))
		if err != nil {
			return nil, nil, fmt.Errorf("--template %s: %w", src, err)
		}
		if err := add(dest, render); err != nil {
			return nil, nil, fmt.Errorf("--template: %w", err)
		}
	}
	if o.socket != "" {
		abs, err := filepath.Abs(o.socket)
		if err != nil {
			return nil, nil, err
		}
		if sock, err = agent.ListenSocket(abs); err != nil {
			return nil, nil, fmt.Errorf("--socket: %w", err)
		}
		sinks = append(sinks, sock)
	}
	return sinks, closeAll, nil
}

// fileAttrs parses --token-file-mode and --token-file-owner.
func (o *agentOptions) fileAttrs() (fs.FileMode, *agent.Owner, error) {
	m, err := strconv.ParseUint(o.mode, 8, 32)
	if err != nil || m > 0o777 || m&0o600 != 0o600 {
		return 0, nil, fmt.Errorf("--token-file-mode %q: give an octal mode such as 0600 or 0640 (the owner must read and write)", o.mode)
	}
	if o.owner == "" {
		return fs.FileMode(m), nil, nil
	}
	u, g, hasGroup := strings.Cut(o.owner, ":")
	uid, err := lookupID(u, func(s string) (string, error) {
		usr, err := user.Lookup(s)
		if err != nil {
			return "", err
		}
		return usr.Uid, nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("--token-file-owner %q: %w", o.owner, err)
	}
	gid := -1
	if hasGroup {
		if gid, err = lookupID(g, func(s string) (string, error) {
			grp, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return grp.Gid, nil
		}); err != nil {
			return 0, nil, fmt.Errorf("--token-file-owner %q: %w", o.owner, err)
		}
	}
	return fs.FileMode(m), &agent.Owner{UID: uid, GID: gid}, nil
}

func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	id, err := byName(s)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(id)
}

func unwrapFSErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// agentsDir is where running agents hold their locks and write their
// status, one pair per credential.
func (a *App) agentsDir() (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "agents"), nil
}

// claimAgent takes k's agent lock, held for the agent's life: a second
// agent for one credential is refused, naming the first. A lock still
// held for a moment by an agent that is exiting is waited for.
func (a *App) claimAgent(ctx context.Context, k latch.Key) (*agentStatus, func(), error) {
	dir, err := a.agentsDir()
	if err != nil {
		return nil, nil, err
	}
	lk := filelock.Locker{Dir: dir}
	deadline := time.Now().Add(time.Second)
	for {
		unlock, ok, err := lk.TryLock(k)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			st := &agentStatus{path: statusPath(dir, k), PID: os.Getpid(), Started: time.Now().UTC()}
			return st, func() { st.remove(); unlock() }, nil
		}
		if time.Now().After(deadline) {
			who := "another latch agent"
			if st := readStatus(statusPath(dir, k)); st != nil {
				who = fmt.Sprintf("another latch agent (pid %d)", st.PID)
			}
			return nil, nil, usageError(fmt.Errorf("%s already keeps %s alive; stop it first, or give this one another --host or --org", who, k))
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
