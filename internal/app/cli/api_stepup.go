package cli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/stepup"
)

// EnvStepUp, set to 1, makes `latch api` step up as --step-up does.
const EnvStepUp = "LATCH_STEP_UP"

// heldScopes are the scopes the login holds: the token's granted scope,
// else the host's remembered ones.
func (a *App) heldScopes(ctx context.Context, host string) []string {
	if src, ok := a.src.(*latch.Source); ok {
		if t, err := src.Token(ctx); err == nil && t.Scope != "" {
			return strings.Fields(t.Scope)
		}
	}
	if host != "" {
		return a.hostEntry(host).Scopes
	}
	return nil
}

// StepUpWanted reports whether `latch api` should log in again by
// itself for a step-up challenge: asked for (--step-up or LATCH_STEP_UP=1)
// and a person is there to do it (a terminal). why says why not, when
// asked for.
func (a *App) StepUpWanted(flag bool) (ok bool, why string) {
	if !flag && a.Getenv(EnvStepUp) != "1" {
		return false, ""
	}
	if a.StaticToken() {
		return false, EnvToken + " is set, and latch never replaces it"
	}
	if !a.canPrompt() {
		return false, "--step-up logs in again only on a terminal, where a person can approve it"
	}
	if host, err := a.Host(); err == nil && a.hostEntry(host).Grant.For(a.ClientID(host), a.Org(host)) {
		return false, "this is a program's login (--grant), with no person to log in again"
	}
	return true, ""
}

// StepUp logs in again for c, as StepUpCommand's line would, with the
// acr_values and max_age for this login only (not remembered), and
// makes the next HTTPClient use the new credential.
func (a *App) StepUp(ctx context.Context, c *stepup.Challenge) error {
	host, _ := a.Host()
	args := []string{} // not nil: cobra would read os.Args
	if len(c.Scopes) > 0 {
		args = append(args, "--scopes", strings.Join(c.Union(a.heldScopes(ctx, host)), ","))
	}
	var o *loginOptions
	cmd := a.newLoginCmd(func(lo *loginOptions) error { o = lo; return nil })
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.ExecuteContext(ctx); err != nil {
		return err
	}
	o.authParams = url.Values{}
	if len(c.ACRValues) > 0 {
		o.authParams.Set("acr_values", strings.Join(c.ACRValues, " "))
	}
	if c.MaxAge >= 0 {
		o.authParams.Set("max_age", strconv.Itoa(c.MaxAge))
	}
	if a.noBrowserHere() != "" {
		// The device grant carries no acr_values or max_age: paste the
		// browser's redirect back instead.
		o.noBrowser = true
	}
	a.loggingIn = true
	defer func() { a.loggingIn = false }()
	if err := a.login(ctx, o); err != nil {
		return err
	}
	a.client, a.src = nil, nil
	return nil
}

// StepUpCommand is the `latch auth login` that meets c: the scopes held
// (the token's granted scope, else the host's remembered ones) with c's
// added (RFC 6750 §3.1), and the acr_values and max_age it names (RFC
// 9470 §3). Every value was checked by stepup.Parse.
func (a *App) StepUpCommand(ctx context.Context, c *stepup.Challenge) string {
	host, _ := a.Host()
	held := a.heldScopes(ctx, host)
	args := []string{"latch"}
	if host != "" {
		args = append(args, "--host", shellArg(host))
	}
	args = append(args, "auth", "login")
	if org := a.Org(host); org != "" {
		args = append(args, "--org", shellArg(org))
	}
	if len(c.Scopes) > 0 {
		args = append(args, "--scopes", shellArg(strings.Join(c.Union(held), ",")))
	}
	if len(c.ACRValues) > 0 {
		args = append(args, "--param", shellArg("acr_values="+strings.Join(c.ACRValues, " ")))
	}
	if c.MaxAge >= 0 {
		args = append(args, "--param", "max_age="+strconv.Itoa(c.MaxAge))
	}
	return strings.Join(args, " ")
}

// stepUpMessage says what the API asked for beyond this login.
func stepUpMessage(c *stepup.Challenge, command string) string {
	var want string
	switch {
	case c.Error == "insufficient_scope" && len(c.Scopes) > 0:
		want = "the scope " + strings.Join(c.Scopes, " ") + " (RFC 6750 §3.1)"
	case c.Error == "insufficient_scope":
		want = "a scope it did not name (RFC 6750 §3.1): ask its documentation which, and add it with --scopes"
	default:
		var parts []string
		if len(c.ACRValues) > 0 {
			parts = append(parts, "authentication "+strings.Join(c.ACRValues, " or "))
		}
		if c.MaxAge >= 0 {
			parts = append(parts, fmt.Sprintf("an authentication at most %d s old", c.MaxAge))
		}
		if len(parts) == 0 {
			parts = append(parts, "a stronger authentication")
		}
		want = strings.Join(parts, " and ") + " (RFC 9470)"
	}
	if c.Error == "insufficient_scope" && len(c.Scopes) == 0 {
		return "The API needs " + want + "."
	}
	return "The API needs " + want + "; log in again for it: " + command
}
