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
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/term"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/config"
	"github.com/latchdev/latch/internal/settings"
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
func (a *App) loginHintFor(org string) string {
	args := []string{"latch"}
	if a.root != nil && a.flagSet("host") {
		args = append(args, "--host", a.flags.host)
	}
	args = append(args, "auth", "login")
	if org != "" {
		args = append(args, "--org", org)
	}
	return "run `" + strings.Join(args, " ") + "`"
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

	cfg    *config.File
	client *http.Client // the refresh-aware client, built once
	src    latch.TokenSource
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
	wctx, cancel := context.WithTimeout(context.Background(), latch.DefaultRefreshTimeout+latch.SaveTimeout)
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
		return oneLine(fmt.Sprintf("the login for %s%s can no longer be used (%s); %s", lr.Key.Issuer, orgSuffix(lr.Key.Account), lr.Err, hint))
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	var lost *latch.AnswerLostError
	if errors.As(err, &lost) {
		return oneLine(err.Error()) + "; the stored credential was kept: try again, and if the server then says the login can no longer be used, " + a.loginHintFor(a.flags.org)
	}
	if exitCode(err) == ExitTransient {
		return oneLine(err.Error()) + "; temporary failure, the stored credential was kept: try again"
	}
	return oneLine(err.Error())
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
	pf.StringVar(&a.flags.store, "credential-store", "", "where credentials live: auto, keyring, file, or a fleet store's postgres:// or redis:// URL (env "+EnvStore+")")
	pf.BoolVar(&a.flags.plaintextStore, "insecure-store-plaintext", false, "let a fleet store keep tokens unencrypted (else "+EnvStoreKeyFile+" is required)")
	pf.BoolVar(&a.flags.debug, "debug", false, "log every HTTP request and response to stderr, secrets redacted (env "+EnvDebug+"=1)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	a.registerCompletions(root)

	root.AddCommand(a.newAuthCmd(), newAPICmd(a), a.newExecCmd(), a.newProxyCmd(), a.newCredentialCmd(), a.newVersionCmd())
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
	_ = root.RegisterFlagCompletionFunc("credential-store", fixed(
		"auto\tthe keyring when it works, else a 0600 file",
		"keyring\tthe system keyring (Secret Service, Keychain, Credential Manager)",
		"file\ta 0600 file in the config directory",
		"postgres://\ta fleet store on PostgreSQL",
		"redis://\ta fleet store on Redis"))
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

// suggest returns " (did you mean …?)" for a mistyped subcommand of cmd.
func suggest(cmd *cobra.Command, typed string) string {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // what cobra itself uses
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

// baseTransport is http.DefaultTransport, wrapped in the debug logger
// when --debug or LATCH_DEBUG=1.
func (a *App) baseTransport() http.RoundTripper {
	var rt http.RoundTripper = http.DefaultTransport
	if a.debug() {
		rt = debugTransport(rt, a.Stderr)
	}
	// Outside the debug log, so the log shows it.
	return &uaTransport{base: rt, ua: userAgent()}
}

// HTTPClient returns the refresh-aware client every API call goes
// through: latch.Transport (origins: the API and GraphQL URLs) over the
// debug logger, if on, over http.DefaultTransport. LATCH_TOKEN, when set,
// is used as is and never refreshed or stored (LESSONS 11). The client and
// its Source are built once, so a command reads the store once.
func (a *App) HTTPClient(ctx context.Context) (*http.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	src, err := a.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	api, err := a.APIURL(ctx)
	if err != nil {
		return nil, err
	}
	gql, err := a.GraphQLURL(ctx)
	if err != nil {
		return nil, err
	}
	a.client = &http.Client{Transport: &latch.Transport{
		Source:  src,
		Base:    a.baseTransport(),
		Origins: []string{origin(api), origin(gql)},
	}}
	return a.client, nil
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// tokenSource returns LATCH_TOKEN as a static source, or the stored
// credential's shared Source.
func (a *App) tokenSource(ctx context.Context) (latch.TokenSource, error) {
	if a.src != nil {
		return a.src, nil
	}
	if a.StaticToken() {
		a.src = latch.StaticToken(strings.TrimSpace(a.Getenv(EnvToken)))
		return a.src, nil
	}
	s, _, err := a.storedSource(ctx)
	if err != nil {
		return nil, err
	}
	a.src = s
	return s, nil
}

// storedSource builds the Source for the selected host, client and org.
// The token endpoint comes from the metadata cached at login for the
// credential's issuer, so a refresh goes only to the server that issued
// the token (LESSONS 10).
func (a *App) storedSource(ctx context.Context) (*latch.Source, *storeChoice, error) {
	host, err := a.Host()
	if err != nil {
		return nil, nil, err
	}
	sc, err := a.openStore(ctx, host, storeRecorded)
	if err != nil {
		return nil, nil, err
	}
	if a.hostEntry(host).Metadata == nil {
		// Every login caches the metadata, so without it there is
		// normally no credential: say so without a network call.
		k := latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: a.Org(host)}
		if _, err := sc.store.Load(ctx, k); errors.Is(err, latch.ErrNotFound) {
			return nil, nil, &latch.LoginRequiredError{Key: k, Hint: loginHint}
		}
	}
	cfg, err := a.oauthConfig(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	s := &latch.Source{
		Config:    cfg,
		Store:     sc.store,
		Key:       cfg.Key(a.Org(host)),
		LoginHint: loginHint,
	}
	if a.debug() {
		s.OnRefresh = func(ev latch.RefreshEvent) {
			fmt.Fprintf(a.Stderr, "* latch: token %s (generation %d)\n", ev.Kind, ev.Generation)
		}
	}
	return s, sc, nil
}

// oauthConfig returns the client configuration for host, from the
// metadata cached in the config file at login, or by discovery (RFC 8414)
// when nothing is cached, with the host's login settings.
func (a *App) oauthConfig(ctx context.Context, host string) (*latch.Config, error) {
	h := a.hostEntry(host)
	md := h.Metadata
	if md == nil {
		m, err := discovery.Fetch(ctx, &http.Client{Transport: a.baseTransport()}, host)
		if err != nil {
			return nil, err
		}
		md = m
		// A cache; failing to keep it costs a round trip next time.
		_ = a.updateConfig(ctx, func(cf *config.File) error {
			cf.Ensure(host).Metadata = md
			return nil
		})
	}
	scopes := h.Scopes
	if scopes == nil {
		scopes = defaultScopes
	}
	c, err := a.clientConfig(host, md, scopes, h.Params)
	if err != nil {
		return nil, err
	}
	c.Endpoint.AuthStyle = authStyle(h.ClientAuth)
	return c, nil
}

// Client authentication methods (RFC 8414 §2, RFC 7591 §2).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
)

// authStyle maps a client authentication method to the one style latch
// sends: never two, since a second try would spend the grant twice.
func authStyle(method string) oauth2.AuthStyle {
	if method == authBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// clientConfig builds the latch.Config for host's client from md.
func (a *App) clientConfig(host string, md *discovery.Metadata, scopes []string, params url.Values) (*latch.Config, error) {
	c := md.Config(a.ClientID(host), scopes)
	c.Issuer = config.Normalize(md.Issuer)
	c.Params = params
	c.HTTPClient = &http.Client{Transport: a.baseTransport()}
	if v := a.Getenv(EnvTokenTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, usageError(fmt.Errorf("%s=%q: want a positive duration such as 10s", EnvTokenTimeout, v))
		}
		c.Timeout = d
	}
	return c, nil
}
