//go:build unix

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/agent"
)

// EnvTokenFile names the token file a supervised child re-reads.
const EnvTokenFile = "LATCH_TOKEN_FILE"

// signalNames are the signals --signal takes.
var signalNames = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "WINCH": syscall.SIGWINCH, "QUIT": syscall.SIGQUIT}

// parseSignal returns the signal named s ("HUP", "SIGHUP", "hup").
func parseSignal(s string) (os.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	return nil, fmt.Errorf("--signal %q: give one of HUP, USR1, USR2, INT, TERM, QUIT, WINCH", s)
}

// forwarded are the signals a supervisor passes to its child. When stdin
// is a terminal, the terminal already sends INT, QUIT and WINCH to the
// child (it is in the foreground process group), so those are not sent
// twice.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// supervisor runs one child and keeps it supplied with a fresh token:
// an agent.Agent refreshes, and its sinks are the token file (if any)
// and the supervisor, which restarts or signals the child on rotation.
type supervisor struct {
	a    *App
	o    *execOptions
	path string

	tokens chan *latch.Token
	dead   chan struct{}
	quit   chan struct{}

	child  *exec.Cmd
	exited chan int // the current child's exit status, as a shell gives it
	served string   // the access token the child has
}

func (s *supervisor) String() string { return "the supervised " + filepath.Base(s.path) }

// Deliver hands t to the supervisor's loop.
func (s *supervisor) Deliver(t *latch.Token) error {
	select {
	case s.tokens <- t:
	case <-s.quit:
	}
	return nil
}

// Clear tells the loop the grant is dead.
func (s *supervisor) Clear() error {
	select {
	case s.dead <- struct{}{}:
	case <-s.quit:
	}
	return nil
}

func (a *App) supervise(ctx context.Context, o *execOptions, path string) error {
	if a.StaticToken() {
		return usageError(fmt.Errorf("%s is set: a static token never rotates, so there is nothing to supervise; use latch exec without --restart or --signal", EnvToken))
	}
	src, _, err := a.storedSource(ctx)
	if err != nil {
		return err
	}
	a.src = src
	if _, err := src.Token(ctx); err != nil {
		return err
	}
	s := &supervisor{a: a, o: o, path: path, tokens: make(chan *latch.Token), dead: make(chan struct{}), quit: make(chan struct{})}
	sinks := []agent.Sink{}
	if o.tokenFile != "" {
		abs, err := filepath.Abs(o.tokenFile)
		if err != nil {
			return usageError(err)
		}
		f := &agent.File{Path: abs}
		if err := f.Check(); err != nil {
			return usageError(fmt.Errorf("--token-file: %w", err))
		}
		o.tokenFile = abs
		sinks = append(sinks, f) // written before the child is told
	}
	sinks = append(sinks, s)
	ag := &agent.Agent{Source: src, Sinks: sinks, Logf: func(format string, args ...any) {
		fmt.Fprintf(a.Stderr, "latch exec: %s\n", fmt.Sprintf(format, args...))
	}}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(actx) }()
	code, err := s.loop(sigs, agentDone)
	stop()
	close(s.quit)
	if aerr := <-agentDone; err == nil && aerr != nil {
		err = aerr
	}
	if err != nil {
		return err
	}
	return &ExitError{Code: code, Silent: true, Err: fmt.Errorf("%s exited with status %d", filepath.Base(path), code)}
}

// loop starts the child on the first token and then waits: a new token
// restarts or signals it, a signal is passed on, the child's exit ends
// the supervisor with its status, a dead grant stops the child.
func (s *supervisor) loop(sigs chan os.Signal, agentDone chan error) (int, error) {
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	for {
		select {
		case t := <-s.tokens:
			if err := s.deliver(t); err != nil {
				return 0, err
			}
		case code := <-s.exited:
			return code, nil
		case sig := <-sigs:
			if s.child == nil {
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					return ExitInterrupted, nil
				}
				continue
			}
			if tty && (sig == syscall.SIGINT || sig == syscall.SIGQUIT || sig == syscall.SIGWINCH) {
				continue // the terminal sent it to the child already
			}
			_ = s.child.Process.Signal(sig)
		case <-s.dead:
			fmt.Fprintf(s.a.Stderr, "latch exec: the grant is dead; stopping %s\n", filepath.Base(s.path))
			s.stopChild()
			return 0, nil // the agent returns why
		case err := <-agentDone:
			s.stopChild()
			if err == nil {
				err = errors.New("the token agent stopped")
			}
			agentDone <- err
			return 0, err
		}
	}
}

// deliver starts the child with t, or tells the running one about it.
func (s *supervisor) deliver(t *latch.Token) error {
	switch {
	case s.child == nil:
		return s.start(t)
	case t.AccessToken == s.served:
		return nil
	case s.o.restart:
		fmt.Fprintf(s.a.Stderr, "latch exec: the token rotated; restarting %s\n", filepath.Base(s.path))
		s.stopChild()
		return s.start(t)
	default:
		s.served = t.AccessToken
		return s.child.Process.Signal(s.o.sig)
	}
}

func (s *supervisor) start(t *latch.Token) error {
	env := withEnv(os.Environ(), s.o.env, t.AccessToken)
	if s.o.headerEnv != "" {
		env = withEnv(env, s.o.headerEnv, "Authorization: "+t.Authorization())
	}
	if s.o.tokenFile != "" {
		env = withEnv(env, EnvTokenFile, s.o.tokenFile)
	}
	cmd := exec.Command(s.path, s.o.argv[1:]...)
	cmd.Args[0] = s.o.argv[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		code := ExitCannotRun
		if errors.Is(err, os.ErrNotExist) {
			code = ExitNotFound
		}
		return &ExitError{Code: code, Err: fmt.Errorf("exec: %s: %w", s.o.argv[0], unwrapExecError(err))}
	}
	exited := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		exited <- exitStatus(cmd.ProcessState)
	}()
	s.child, s.exited, s.served = cmd, exited, t.AccessToken
	return nil
}

// stopChild ends the child: SIGTERM, then SIGKILL after the grace.
func (s *supervisor) stopChild() {
	if s.child == nil {
		return
	}
	_ = s.child.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.o.grace)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		_ = s.child.Process.Kill()
		<-s.exited
	}
	s.child, s.exited = nil, nil
}

// exitStatus is a finished process's status as a shell reports it: its
// exit code, or 128 + the signal that killed it.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
