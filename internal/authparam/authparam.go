// Package authparam splits the auth-params of a WWW-Authenticate
// challenge (RFC 9110 §11.2).
package authparam

import "strings"

// Split splits h at commas outside quoted strings.
func Split(h string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(h):
			b.WriteByte(c)
			i++
			c = h[i]
		case c == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(c)
	}
	return append(out, b.String())
}
