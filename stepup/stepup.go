// Package stepup reads the Bearer challenges with which a resource asks
// for more than the token grants: insufficient_scope (RFC 6750 §3.1) and
// insufficient_user_authentication (RFC 9470 §3), and says what a new
// login must ask for.
package stepup

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/latchdev/latch/internal/authparam"
)

// Challenge is one step-up challenge. Its values come from a server:
// they are checked (Parse keeps only scope tokens, acr values and a
// number), never printed raw.
type Challenge struct {
	// Error is insufficient_scope or insufficient_user_authentication.
	Error string
	// Scopes the resource asks for (RFC 6750 §3, scope="…").
	Scopes []string
	// ACRValues and MaxAge, when set, are what the authentication must
	// meet (RFC 9470 §3: acr_values="…", max_age="…" in seconds; -1 when
	// absent).
	ACRValues []string
	MaxAge    int
}

// Parse returns the step-up challenge of an answer, or nil: a 403 with
// error="insufficient_scope", or a 401 with
// error="insufficient_user_authentication" (RFC 9470 §3), in a Bearer
// (or DPoP) WWW-Authenticate.
func Parse(status int, h http.Header) *Challenge {
	for _, v := range h.Values("WWW-Authenticate") {
		p := params(v)
		c := &Challenge{Error: p["error"], MaxAge: -1}
		switch {
		case c.Error == "insufficient_scope" && status == http.StatusForbidden:
		case c.Error == "insufficient_user_authentication" && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		default:
			continue
		}
		c.Scopes = tokens(p["scope"])
		c.ACRValues = tokens(p["acr_values"])
		if n, err := strconv.Atoi(p["max_age"]); err == nil && n >= 0 {
			c.MaxAge = n
		}
		return c
	}
	return nil
}

// Union is held with c's scopes added, in order, each once.
func (c *Challenge) Union(held []string) []string {
	out := slices.Clone(held)
	for _, s := range c.Scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// params reads the auth-params of a challenge (RFC 9110 §11.2); names
// are lower-cased, quoted values unquoted.
func params(h string) map[string]string {
	m := map[string]string{}
	for _, part := range authparam.Split(h) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if i := strings.LastIndexByte(k, ' '); i >= 0 {
			k = k[i+1:] // "bearer error"
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
		}
		if _, seen := m[k]; !seen {
			m[k] = v
		}
	}
	return m
}

// tokens splits a space-separated list and keeps only values that are
// scope tokens (RFC 6749 §3.3: visible ASCII but " and \), at most 64 of
// at most 256 bytes each: a hostile server gets nothing else through.
func tokens(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if len(out) == 64 || len(f) > 256 || !scopeToken(f) {
			continue
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func scopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
