package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
)

// flagSet reports whether the global flag name was given.
func (a *App) flagSet(name string) bool {
	_, ok := a.flagValue(name)
	return ok
}

// flagValue returns the global flag name's value, if it was given.
func (a *App) flagValue(name string) (string, bool) {
	f := a.root.PersistentFlags().Lookup(name)
	if f == nil || !f.Changed {
		return "", false
	}
	return f.Value.String(), true
}

// inputs are the command's flags, environment and config file, which
// settings picks the host, client, org and store from.
func (a *App) inputs() settings.Inputs {
	cf, _ := a.config() // unreadable: Host reports it
	return settings.Inputs{Flag: a.flagValue, Getenv: a.Getenv, Config: cf}
}

func (a *App) config() (*config.File, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	dir, err := config.Dir(a.Getenv)
	if err != nil {
		return nil, err
	}
	f, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	a.cfg = f
	return f, nil
}

func (a *App) configDir() (string, error) { return config.Dir(a.Getenv) }

// updateConfig changes the config file under its lock (config.Update)
// and keeps the result as the command's view of it.
func (a *App) updateConfig(ctx context.Context, fn func(*config.File) error) error {
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	f, err := config.Update(ctx, dir, fn)
	if err != nil {
		return err
	}
	a.cfg = f
	return nil
}

// Host returns the authorization server URL: --host, LATCH_HOST, then the
// selected host in the config file. It must be https unless loopback
// (RFC 8252 §8.3).
func (a *App) Host() (string, error) {
	if _, err := a.config(); err != nil {
		return "", err
	}
	h := a.inputs().Host()
	if h == "" {
		// Nothing configured: not logged in anywhere (exit 4), which
		// auth login turns into a usage error of its own.
		return "", errNoHost
	}
	if err := discovery.CheckURL(h); err != nil {
		return "", usageError(fmt.Errorf("host: %w%s", err, schemeHint(h)))
	}
	return config.Normalize(h), nil
}

// schemeHint suggests the URL a host without a scheme likely meant: http
// on loopback (RFC 8252 §8.3), https elsewhere.
func schemeHint(h string) string {
	if strings.Contains(h, "://") || h == "" {
		return ""
	}
	hostname := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		hostname = hp
	}
	scheme := "https://"
	if discovery.IsLoopback(hostname) {
		scheme = "http://"
	}
	return "; did you mean --host " + scheme + h + "?"
}

// errNoHost is a command run before any login: no --host, no LATCH_HOST,
// no host selected in the config file. It matches latch.ErrLoginRequired.
var errNoHost = &noHostError{}

type noHostError struct{}

func (*noHostError) Error() string {
	return "not logged in: run `latch auth login --host URL` (or pass --host URL, or set " + EnvHost + ")"
}

func (*noHostError) Is(target error) bool { return target == latch.ErrLoginRequired }

// hostEntry returns the config entry for host, or an empty one.
func (a *App) hostEntry(host string) *config.Host { return a.inputs().Entry(host) }

// ClientID returns the OAuth client ID for host.
func (a *App) ClientID(host string) string { return a.inputs().ClientID(host) }

// Org returns the selected organization for host ("" for the default).
func (a *App) Org(host string) string { return a.inputs().Org(host) }

func (a *App) debug() bool {
	if a.flagSet("debug") {
		return a.flags.debug
	}
	return settings.Debug(a.Getenv)
}

// APIURL returns the REST base: --api-url, the config file, or the host.
func (a *App) APIURL(context.Context) (string, error) {
	host := ""
	if !a.flagSet("api-url") {
		var err error
		if host, err = a.Host(); err != nil {
			return "", err
		}
	}
	u := a.inputs().APIURL(host)
	if err := discovery.CheckURL(u); err != nil {
		return "", usageError(fmt.Errorf("--api-url: %w", err))
	}
	return u, nil
}

// GraphQLURL returns the GraphQL endpoint: --graphql-url, the config
// file, or HOST/graphql.
func (a *App) GraphQLURL(context.Context) (string, error) {
	u := a.flags.graphqlURL
	if !a.flagSet("graphql-url") {
		host, err := a.Host()
		if err != nil {
			return "", err
		}
		if u = a.hostEntry(host).GraphQLURL; u == "" {
			u = host + "/graphql"
		}
	}
	if err := discovery.CheckURL(u); err != nil {
		return "", usageError(fmt.Errorf("--graphql-url: %w", err))
	}
	return strings.TrimSuffix(u, "/"), nil
}

// canPrompt reports whether latch may ask the person a question: stdin
// and stderr are a terminal (as gh's IOStreams.CanPrompt).
func (a *App) canPrompt() bool {
	in, ok1 := a.Stdin.(*os.File)
	errOut, ok2 := a.Stderr.(*os.File)
	return ok1 && ok2 && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(errOut.Fd()))
}

// StdoutIsTTY reports whether stdout is a terminal.
func (a *App) StdoutIsTTY() bool {
	f, ok := a.Stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ColorEnabled reports whether output may be coloured: stdout is a
// terminal and NO_COLOR is unset.
func (a *App) ColorEnabled() bool { return a.StdoutIsTTY() && a.Getenv("NO_COLOR") == "" }

// StaticToken reports whether LATCH_TOKEN supplies the token.
func (a *App) StaticToken() bool { return strings.TrimSpace(a.Getenv(EnvToken)) != "" }
