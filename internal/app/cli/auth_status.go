package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/keyring"
)

// statusEntry is one credential in `auth status`. It holds no secret.
type statusEntry struct {
	Host        string     `json:"host"`
	ClientID    string     `json:"client_id"`
	AuthServer  string     `json:"authorization_server,omitempty"` // when a resource named it (RFC 9728)
	Resource    string     `json:"resource,omitempty"`             // the API a zero-config login is for
	Registered  bool       `json:"client_registered,omitempty"`    // latch registered the client (RFC 7591)
	Org         string     `json:"org"`
	Account     string     `json:"account,omitempty"` // who the grant is for, from the id_token or userinfo
	Selected    bool       `json:"selected"`
	LoggedIn    bool       `json:"logged_in"`
	Valid       bool       `json:"valid"`
	Expiry      *time.Time `json:"expiry,omitempty"`
	Refreshable bool       `json:"refreshable"`
	// RenewedBy is a workload login's grant, which renews a token that
	// has no refresh token.
	RenewedBy     string       `json:"renewed_by,omitempty"`
	RefreshExpiry *time.Time   `json:"refresh_expiry,omitempty"`
	Token         string       `json:"token,omitempty"` // masked
	Generation    uint64       `json:"generation"`
	Store         string       `json:"store"`
	Location      string       `json:"location,omitempty"`
	KeyringHealth string       `json:"keyring_health,omitempty"`
	Error         string       `json:"error,omitempty"`
	Revoked       string       `json:"revoked,omitempty"` // why the grant died, when its access token is kept
	Scopes        string       `json:"scopes,omitempty"`  // granted (RFC 6749 §5.1 scope), else as asked for
	ScopesAsked   bool         `json:"scopes_asked,omitempty"`
	UsedBy        []string     `json:"used_by,omitempty"` // the git, Docker and kubectl setups bound to it
	FromEnvToken  bool         `json:"from_env_token,omitempty"`
	Agent         *agentStatus `json:"agent,omitempty"` // the latch agent that keeps it alive

	err error // why the credential cannot be used, for the exit code
}

// statusOptions holds the flags of `latch auth status`.
type statusOptions struct {
	json bool
}

// newStatusCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newStatusCmd(runF func(*statusOptions) error) *cobra.Command {
	o := &statusOptions{}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show each host and organization, and whether its token is usable",
		Long: `For each host and organization in the config file, show whether a
token is stored and valid, when it expires, whether it refreshes itself,
which store holds it and the keyring's health, the scopes granted, and the
git, Docker and kubectl setups bound to it. Tokens are masked (--show-token
is not offered: use latch auth token). --host and --org show only that host
or account. Exit code 4 when the selected host has no usable credential.

To ask for more scopes, log in again with them:
  latch auth login --scopes openid,offline_access,read:items`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return o.run(cmd.Context(), a)
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return c
}

// run prints the entries and returns the exit status the selected host's
// credential gives: nil when usable.
func (o *statusOptions) run(ctx context.Context, a *App) error {
	entries, err := a.status(ctx)
	if err != nil {
		return err
	}
	if len(entries) == 0 && !o.json {
		return a.notLoggedIn()
	}
	if o.json {
		if entries == nil {
			entries = []statusEntry{} // "[]", not "null"
		}
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(entries); err != nil {
			return err
		}
	} else {
		a.printStatus(entries)
	}
	for _, e := range entries {
		if e.Selected && (e.Valid || e.Refreshable || e.RenewedBy != "") {
			return nil
		}
		if e.Selected && e.err != nil {
			// Not "not logged in": a login would replace a
			// credential that may only need a chmod.
			return &ExitError{Code: exitCode(e.err), Silent: o.json,
				Err: fmt.Errorf("the credential for %s%s cannot be used: %w", e.Host, orgSuffix(e.Org), e.err)}
		}
	}
	err = a.notLoggedIn()
	if o.json {
		err = &ExitError{Code: ExitAuth, Err: err, Silent: true}
	}
	return err
}

// notLoggedIn is status's one answer when the selected host has no
// usable credential: the login command to run, with the flags in force.
func (a *App) notLoggedIn() error {
	host, err := a.Host()
	if err != nil {
		return err // no host at all: errNoHost names --host URL
	}
	org := a.Org(host)
	return &latch.LoginRequiredError{Key: latch.Key{Issuer: host, ClientID: a.ClientID(host), Account: org}, Hint: a.loginHintFor(org)}
}

// status lists every configured host and org, or only the host given by
// --host or LATCH_HOST. A given host that is not configured is listed
// only when its store holds a credential (a fleet store another machine
// logged in to): never a phantom "not logged in" entry.
func (a *App) status(ctx context.Context) ([]statusEntry, error) {
	cf, err := a.config()
	if err != nil {
		return nil, err
	}
	selHost, hostErr := a.Host()
	var entries []statusEntry
	if tok := a.Getenv(EnvToken); tok != "" {
		entries = append(entries, statusEntry{
			Host: selHost, Org: "", Selected: true, LoggedIn: true, Valid: true,
			Token: mask(tok), Store: "environment", Location: EnvToken, FromEnvToken: true,
		})
	}
	hosts := cf.HostNames()
	given := hostErr == nil && a.inputs().Pick("host", EnvHost, "") != ""
	if given {
		hosts = []string{selHost}
	}
	// --org (or LATCH_ORG) filters, as --host does.
	orgGiven := a.flagSet("org") || a.Getenv(EnvOrg) != ""
	q := statusQuery{cf: cf, selHost: selHost, orgGiven: orgGiven, setups: a.setups(ctx), now: time.Now()}
	for _, host := range hosts {
		es, err := a.hostStatus(ctx, q, host)
		if err != nil {
			return nil, err
		}
		entries = append(entries, es...)
	}
	return entries, nil
}

// statusQuery is what every host's entries are built against.
type statusQuery struct {
	cf       *config.File
	selHost  string
	orgGiven bool // --org or LATCH_ORG: only the selected org
	setups   setupList
	now      time.Time
}

// hostStatus builds host's entries: one per org it has a login for, and
// the selected org.
func (a *App) hostStatus(ctx context.Context, q statusQuery, host string) ([]statusEntry, error) {
	orgs := []string{""}
	if h := q.cf.Get(host); h != nil && len(h.Orgs) > 0 {
		orgs = h.Orgs
	}
	selOrg := a.Org(host)
	if host == q.selHost && !slices.Contains(orgs, selOrg) {
		orgs = append(orgs, selOrg)
	}
	sc, err := a.openStore(ctx, host, storeProbed)
	if err != nil {
		return nil, err
	}
	if sc.health == "" && sc.where == "" {
		// The file store is in use; still say why the keyring is not.
		sc.health = keyring.Probe(ctx).String()
	}
	issuer := host
	if md := a.hostEntry(host).Metadata; md != nil {
		issuer = md.Issuer
	}
	var entries []statusEntry
	for _, org := range orgs {
		if q.orgGiven && org != selOrg {
			continue
		}
		key := latch.Key{Issuer: issuer, ClientID: a.ClientID(host), Account: org}
		e := statusEntry{
			Host: host, ClientID: key.ClientID, Org: org,
			Selected: host == q.selHost && org == selOrg && a.Getenv(EnvToken) == "",
			Store:    sc.kind, Location: sc.describe(key), KeyringHealth: sc.health,
		}
		e.AuthServer, e.Resource = a.hostEntry(host).AuthServer, a.hostEntry(host).Resource
		if r := a.hostEntry(host).Registration; r != nil && r.ClientID == key.ClientID {
			e.Registered = true
		}
		e.UsedBy = q.setups.bound(host, org, org == selOrg)
		tok, err := sc.store.Load(ctx, key)
		switch {
		case errors.Is(err, latch.ErrNotFound):
			if q.cf.Get(host) == nil {
				continue // the given host, not configured, holds nothing
			}
			if sc.kind == credstore.KindFile {
				e.Location = "" // no file to name
			}
		case err != nil:
			e.Error, e.err = oneLine(err.Error()), err
		default:
			e.setToken(tok, q.now, a.hostEntry(host).Scopes)
			if g := a.hostEntry(host).Grant; g.For(tok.ClientID, tok.Account) && !e.Refreshable {
				e.RenewedBy = "the " + grantName(g) + " grant, reading " + grantInputs(g)
			}
			e.Agent = a.runningAgent(key)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// setToken fills e from the stored set tok; asked are the scopes the
// host's logins ask for, shown when the server did not say which it
// granted.
func (e *statusEntry) setToken(tok *latch.Token, now time.Time, asked []string) {
	e.LoggedIn = true
	e.Valid = !tok.Expired(now)
	e.Refreshable = tok.Refreshable()
	e.Token = mask(tok.AccessToken)
	e.Generation = tok.Generation
	e.Account = tok.User
	e.Revoked = tok.Revoked
	e.Scopes = tok.Scope
	if e.Scopes == "" && len(asked) > 0 {
		e.Scopes, e.ScopesAsked = strings.Join(asked, " "), true
	}
	if !tok.Expiry.IsZero() {
		t := tok.Expiry
		e.Expiry = &t
	}
	if !tok.RefreshExpiry.IsZero() {
		t := tok.RefreshExpiry
		e.RefreshExpiry = &t
	}
}

func (a *App) printStatus(entries []statusEntry) {
	now := time.Now()
	for _, e := range entries {
		a.printEntry(e, now)
	}
}

// printEntry prints one credential's entry.
func (a *App) printEntry(e statusEntry, now time.Time) {
	w := a.Stdout
	sel := " "
	if e.Selected {
		sel = "*"
	}
	fmt.Fprintf(w, "%s %s%s\n", sel, e.Host, orgSuffix(e.Org))
	if e.FromEnvToken {
		fmt.Fprintf(w, "    token: %s from %s (used as is, never refreshed or stored)\n", e.Token, EnvToken)
		return
	}
	reg := ""
	if e.Registered {
		reg = " (registered by latch, RFC 7591)"
	}
	if e.AuthServer != "" {
		fmt.Fprintf(w, "    authorization server: %s (named by the resource, RFC 9728)\n", e.AuthServer)
	}
	if e.Resource != "" {
		fmt.Fprintf(w, "    resource: %s (the API: latch api, proxy, exec and the helpers use it)\n", e.Resource)
	}
	fmt.Fprintf(w, "    client: %s%s\n", e.ClientID, reg)
	if e.Account != "" {
		fmt.Fprintf(w, "    account: %s\n", e.Account)
	}
	switch {
	case e.Error != "":
		fmt.Fprintf(w, "    error: %s\n", e.Error)
	case !e.LoggedIn:
		fmt.Fprintf(w, "    not logged in\n")
	default:
		printToken(w, e, now)
		printAgent(w, e.Agent, now)
	}
	for _, u := range e.UsedBy {
		fmt.Fprintf(w, "    used by: %s\n", u)
	}
	if e.Location != "" {
		fmt.Fprintf(w, "    store: %s (%s)\n", e.Store, e.Location)
	} else {
		fmt.Fprintf(w, "    store: %s\n", e.Store)
	}
	if e.KeyringHealth != "" {
		fmt.Fprintf(w, "    keyring: %s\n", e.KeyringHealth)
	}
}

// printToken prints a stored token's lines: its state, whether it
// refreshes, its scopes.
func printToken(w io.Writer, e statusEntry, now time.Time) {
	state := "expired"
	switch {
	case e.Valid:
		state = "valid"
	case e.Refreshable:
		state = "expired, refreshes on next use"
	case e.RenewedBy != "":
		state = "expired, renewed on next use"
	}
	exp := "unknown"
	if e.Expiry != nil {
		exp = when(*e.Expiry, now)
	}
	fmt.Fprintf(w, "    token: %s, %s, expires %s\n", e.Token, state, exp)
	switch {
	case e.Refreshable:
		rexp := "refresh token expiry not given by the server"
		if e.RefreshExpiry != nil {
			rexp = "refresh token expires " + when(*e.RefreshExpiry, now)
		}
		fmt.Fprintf(w, "    refreshable: yes (%s)\n", rexp)
	case e.RenewedBy != "":
		fmt.Fprintf(w, "    refreshable: no refresh token; renewed by %s\n", e.RenewedBy)
	case e.Revoked != "":
		fmt.Fprintf(w, "    refreshable: no (the server revoked the grant: %s)\n", e.Revoked)
	default:
		fmt.Fprintf(w, "    refreshable: no\n")
	}
	switch {
	case e.ScopesAsked:
		fmt.Fprintf(w, "    scopes: %s (asked for; the server did not say what it granted)\n", e.Scopes)
	case e.Scopes != "":
		fmt.Fprintf(w, "    scopes: %s\n", e.Scopes)
	}
}
