// Package cli implements the latch command: a thin cobra layer over the
// latch library, its stores, and the dev server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
)

// Environment variables read by the CLI. Flags beat them; they beat the
// config file.
const (
	EnvHost     = settings.EnvHost
	EnvClientID = settings.EnvClientID
	EnvOrg      = settings.EnvOrg
	EnvStore    = settings.EnvStore
	// EnvStoreKeyFile names the 32-byte key a fleet store seals tokens with.
	EnvStoreKeyFile = "LATCH_STORE_KEY_FILE"
	EnvDebug        = settings.EnvDebug
	EnvToken        = settings.EnvToken
	// EnvClientSecret holds the client secret for `auth login`; it is
	// then stored with the credential.
	EnvClientSecret = "LATCH_CLIENT_SECRET"
	// EnvTokenTimeout bounds each token-endpoint request (default 15s).
	EnvTokenTimeout = settings.EnvTokenTimeout
	EnvConfigDir    = config.EnvDir
	DefaultClient   = settings.DefaultClient
)

// loginHint is what a login-required error tells the user to run.
const loginHint = "run `latch auth login`"

// loginHintFor is loginHint with the flags that were in force, so the
// command can be pasted: --host when it was given, --org for an org.
func (a *App) loginHintFor(org string) string { return "run `" + a.loginCommand(org) + "`" }

// loginCommand is the `latch auth login` to paste for org, every argument
// shell-quoted where it needs it.
func (a *App) loginCommand(org string) string {
	args := []string{"latch"}
	if a.root != nil && a.flagSet("host") {
		args = append(args, "--host", shellArg(a.flags.host))
	}
	args = append(args, "auth", "login")
	if org != "" {
		args = append(args, "--org", shellArg(org))
	}
	return strings.Join(args, " ")
}

// shellArg is s as one sh word: as it is when it holds only characters
// no shell treats specially, else single-quoted.
func shellArg(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return shellQuote(s)
}

// defaultScopes asks for a refresh token (OpenID Connect Core §11) when a
// server publishes no scopes_supported; with the list, login asks for the
// ones of these it names.
var defaultScopes = []string{"openid", "offline_access"}

// App is one invocation of the CLI: its streams, its environment and the
// global flags. Nothing in it outlives the command.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	root  *cobra.Command
	flags struct {
		host, clientID, apiURL, graphqlURL, org, store string
		debug, plaintextStore                          bool
	}

	// What one invocation builds once, as gh's Factory does (App.config,
	// App.HTTPClient, App.tokenSource): the config file as read (replaced
	// by each updateConfig), and the one token source and client every
	// request of the command shares, so that a refresh is single-flight
	// and Run can finish one whose grant was sent (finishRefresh).
	// Inputs are in inputs.go, the client side in client.go.
	cfg    *config.File
	client *http.Client
	src    latch.TokenSource

	// loggingIn: the command is `auth login`, which stores nothing until
	// it succeeds, so its failures never say a credential was kept.
	loggingIn bool
}

// Run runs the latch command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	a := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv}
	root := a.newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.finishRefresh(ctx)
	code := exitCode(err)
	if err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) || !ee.Silent {
			fmt.Fprintf(stderr, "latch: %s\n", a.message(err))
		}
	}
	return code
}

// finishRefresh waits for a refresh whose grant was already sent, so the
// process does not exit between the server's rotation and the save of
// the new set (the next command would present the spent token, and the
// server would revoke the login). The wait is bounded by the refresh
// transaction's own deadline; a second Ctrl-C still ends the process.
func (a *App) finishRefresh(ctx context.Context) {
	src, ok := a.src.(*latch.Source)
	if !ok || !src.Refreshing() {
		return
	}
	if ctx.Err() != nil {
		fmt.Fprintln(a.Stderr, "latch: finishing the token refresh so the login is not lost… (press Ctrl-C again to quit now)")
	}
	wctx, cancel := context.WithTimeout(context.Background(), latch.DefaultTimeouts.Refresh+latch.DefaultTimeouts.Save)
	defer cancel()
	_ = src.Wait(wctx)
}

// message renders err as one line, adding the fix where latch knows it.
func (a *App) message(err error) string {
	var lr *latch.LoginRequiredError
	if errors.As(err, &lr) {
		hint := lr.Hint
		if hint == "" || hint == loginHint {
			hint = a.loginHintFor(lr.Key.Account)
		}
		if lr.Err == nil {
			return fmt.Sprintf("not logged in to %s with client %s%s; %s", lr.Key.Issuer, lr.Key.ClientID, orgSuffix(lr.Key.Account), hint)
		}
		if latch.NeedsInteraction(lr.Err) {
			// OIDC Core §3.1.2.6: a policy (MFA, consent) wants the user.
			return oneLine(fmt.Sprintf("the server for %s%s wants you to sign in at a browser (%s); the stored credential was kept; %s", lr.Key.Issuer, orgSuffix(lr.Key.Account), lr.Err, hint))
		}
		return oneLine(fmt.Sprintf("the login for %s%s can no longer be used (%s); %s", lr.Key.Issuer, orgSuffix(lr.Key.Account), lr.Err, hint))
	}
	if errors.Is(err, context.Canceled) {
		if a.loggingIn {
			return "login cancelled; nothing was stored"
		}
		return "interrupted"
	}
	if keyringMissing(err) {
		return oneLine(err.Error()) + "; to use the 0600 credential file instead, pass --credential-store file (or auto) or set " + EnvStore + "=file"
	}
	if exitCode(err) == ExitTransient {
		msg, u := oneLine(err.Error()), a.refusedServer(err)
		switch {
		case a.loggingIn && u != "":
			return msg + "; is a server running at " + u + "? Nothing was stored"
		case a.loggingIn:
			return msg + "; temporary failure, nothing was stored: try again"
		case errors.Is(err, latch.ErrAnswerLost):
			return msg + "; the stored credential was kept: try again, and if the server then says the login can no longer be used, " + a.loginHintFor(a.flags.org)
		case u != "":
			return msg + "; is a server running at " + u + "? The stored credential was kept: try again once it is"
		}
		return msg + "; temporary failure, the stored credential was kept: try again"
	}
	if m, ok := storeAuthMessage(err); ok {
		return m
	}
	return oneLine(err.Error())
}

// refusedServer names the server that refused the connection (nothing
// listens there): the request's origin, or the host's when the address is
// the host's, else the address; "" for any other error.
func (a *App) refusedServer(err error) string {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil {
		return ""
	}
	addr := oe.Addr.String()
	if host, herr := a.Host(); herr == nil {
		if u, perr := url.Parse(host); perr == nil && u.Host == addr {
			return u.Scheme + "://" + u.Host
		}
	}
	return addr
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orgSuffix(org string) string {
	if org == "" {
		return ""
	}
	return " (org " + org + ")"
}

func (a *App) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "latch",
		Short: "Stay logged in to an OAuth 2.0 API from the command line",
		Long: `latch logs in to an OAuth 2.0 authorization server, keeps the token fresh,
and calls the API with it.

Exit codes: 0 ok, 1 API or HTTP error, 2 usage, 4 authentication required,
5 transient failure (the credential was kept).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          usageArgs(cobra.NoArgs),
		RunE:          groupRun,
	}
	a.root = root
	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.host, "host", "", "authorization server `URL` (env "+EnvHost+")")
	pf.StringVar(&a.flags.clientID, "client-id", DefaultClient, "OAuth client `ID` (env "+EnvClientID+")")
	pf.StringVar(&a.flags.apiURL, "api-url", "", "REST API base `URL` (default: the host)")
	pf.StringVar(&a.flags.graphqlURL, "graphql-url", "", "GraphQL endpoint `URL` (default: HOST/graphql)")
	pf.StringVar(&a.flags.org, "org", "", "organization (account) to act for (env "+EnvOrg+")")
	pf.StringVar(&a.flags.store, "credential-store", "", "where credentials live: auto, keyring, file, or a fleet store's URL ("+storeSchemes()+") (env "+EnvStore+")")
	pf.BoolVar(&a.flags.plaintextStore, "insecure-store-plaintext", false, "let a fleet store keep tokens unencrypted (else "+EnvStoreKeyFile+" is required)")
	pf.BoolVar(&a.flags.debug, "debug", false, "log every HTTP request and response to stderr, secrets redacted (env "+EnvDebug+"=1)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(ghFlagHint(cmd, err)) })
	a.registerCompletions(root)

	root.AddCommand(a.newAuthCmd(), newAPICmd(a), a.newExecCmd(nil), a.newProxyCmd(nil), a.newAgentCmd(nil), a.newCredentialCmd(), a.newVersionCmd())
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(a.newDevCmd()...)
	return root
}

// registerCompletions completes the global flags' values, not file names.
func (a *App) registerCompletions(root *cobra.Command) {
	fixed := func(vals ...string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return vals, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("credential-store", fixed(append([]string{
		"auto\tthe keyring when it works, else a 0600 file",
		"keyring\tthe system keyring (Secret Service, Keychain, Credential Manager)",
		"file\ta 0600 file in the config directory"}, storeCompletions()...)...))
	_ = root.RegisterFlagCompletionFunc("org", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return a.orgNames(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = root.RegisterFlagCompletionFunc("host", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		cf, err := a.config()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return cf.HostNames(), cobra.ShellCompDirectiveNoFileComp
	})
}

// groupRun is the RunE of commands that only group others: bare, it
// shows help; with an argument, it is an unknown command (exit 2).
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(fmt.Errorf("unknown command %q for %q%s; see `%s --help`", args[0], cmd.CommandPath(), suggest(cmd, args[0]), cmd.CommandPath()))
	}
	return cmd.Help()
}

// ghFlags are gh's flags that latch names differently: an unknown one of
// them gets the latch equivalent in its message.
var ghFlags = map[string]string{
	"--hostname":   "latch calls it --host (a URL): latch --host https://HOST …",
	"--show-token": "latch masks tokens in auth status; latch auth token prints the token",
	"--verbose":    "latch calls it --debug (every request and response, secrets redacted)",
	"-v":           "for more output latch has --debug (every request and response, secrets redacted)",
}

// ghCommands are gh's commands that latch does without.
var ghCommands = map[string]string{
	"refresh": "latch refreshes tokens by itself; to add scopes, log in again with them: latch auth login --scopes SCOPE,…",
}

// ghFlagHint adds the latch equivalent to an unknown gh flag's error.
func ghFlagHint(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if cmd != nil && cmd.Name() == "auth" && (strings.HasPrefix(msg, "unknown flag: --scopes") || strings.HasPrefix(msg, "unknown shorthand flag: 's'")) {
		return fmt.Errorf("%w; %s", err, ghCommands["refresh"]) // gh auth refresh --scopes
	}
	for flag, hint := range ghFlags {
		if msg == "unknown flag: "+flag || strings.HasPrefix(msg, "unknown shorthand flag: '"+strings.TrimPrefix(flag, "-")+"' in "+flag) {
			return fmt.Errorf("%w; %s", err, hint)
		}
	}
	return err
}

// suggest returns " (did you mean …?)" for a mistyped subcommand of cmd.
func suggest(cmd *cobra.Command, typed string) string {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // what cobra itself uses
	}
	if hint, ok := ghCommands[typed]; ok && cmd.Name() == "auth" {
		return " (" + hint + ")"
	}
	s := cmd.SuggestionsFor(typed)
	if len(s) == 0 {
		return ""
	}
	for i := range s {
		s[i] = strconv.Quote(s[i])
	}
	return " (did you mean " + strings.Join(s, " or ") + "?)"
}

// usageArgs makes an argument validator's errors usage errors (exit 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			switch {
			case len(args) == 0 || !strings.HasPrefix(err.Error(), "unknown command "):
			case !cmd.HasSubCommands():
				// A leaf command has no subcommands to be unknown.
				err = fmt.Errorf("unexpected argument %q", args[0])
			default:
				err = fmt.Errorf("%w%s", err, suggest(cmd, args[0]))
			}
			return usageError(fmt.Errorf("%w; see `%s --help`", err, cmd.CommandPath()))
		}
		return nil
	}
}
