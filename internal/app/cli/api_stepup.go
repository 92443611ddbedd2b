package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/stepup"
)

// StepUpCommand is the `latch auth login` that meets c: the scopes held
// (the token's granted scope, else the host's remembered ones) with c's
// added (RFC 6750 §3.1), and the acr_values and max_age it names (RFC
// 9470 §3). Every value was checked by stepup.Parse.
func (a *App) StepUpCommand(ctx context.Context, c *stepup.Challenge) string {
	host, _ := a.Host()
	var held []string
	if src, ok := a.src.(*latch.Source); ok {
		if t, err := src.Token(ctx); err == nil {
			held = strings.Fields(t.Scope)
		}
	}
	if len(held) == 0 && host != "" {
		held = a.hostEntry(host).Scopes
	}
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
