package oauthtest

import "testing"

// TestRedirectAllowed: registered redirect URIs match exactly (Auth0,
// Okta, GitHub Apps, Atlassian), or with RedirectAnyLoopbackPort on any
// port of the same loopback host, path and query (RFC 8252 §7.3; GitHub
// OAuth apps, Entra's http://localhost), and nothing looser.
func TestRedirectAllowed(t *testing.T) {
	exact := Quirks{RedirectURIs: []string{"http://127.0.0.1:8765/callback"}}
	anyPort := Quirks{RedirectURIs: []string{"http://127.0.0.1/callback", "http://localhost"}, RedirectAnyLoopbackPort: true}
	for _, tt := range []struct {
		q    Quirks
		ru   string
		want bool
	}{
		{exact, "http://127.0.0.1:8765/callback", true},
		{exact, "http://127.0.0.1:8766/callback", false},
		{exact, "http://localhost:8765/callback", false},
		{exact, "http://127.0.0.1:8765/callback/x", false},
		{exact, "http://127.0.0.1:8765/callback?x=1", false},
		{anyPort, "http://127.0.0.1:51004/callback", true},
		{anyPort, "http://127.0.0.1/callback", true},
		{anyPort, "http://localhost:8400", true},
		{anyPort, "http://localhost:8400/", true},
		{anyPort, "http://127.0.0.1:51004/other", false},
		{anyPort, "http://[::1]:51004/callback", false},      // another host than registered
		{anyPort, "http://localhost:8400/callback", false},   // another path
		{anyPort, "https://127.0.0.1:51004/callback", false}, // another scheme
		{anyPort, "http://127.0.0.1.evil.example:1/callback", false},
	} {
		if got := tt.q.redirectAllowed(tt.ru); got != tt.want {
			t.Errorf("%v.redirectAllowed(%q) = %v, want %v", tt.q.RedirectURIs, tt.ru, got, tt.want)
		}
	}
}
