package oauthtest

import (
	"net/http"
	"testing"
	"time"
)

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

// TestRefreshLifetimesAtlassian: with Atlassian's limits (90 days unused,
// RefreshTTL; 365 days from the login, RefreshMaxAge) a login kept in use
// rotates until its 365th day and then gets invalid_grant; one left
// unused for more than 90 days gets invalid_grant at once.
func TestRefreshLifetimesAtlassian(t *testing.T) {
	const day = 24 * time.Hour
	q := Quirks{RefreshMaxAge: int((365 * day).Seconds())}
	t.Run("absolute", func(t *testing.T) {
		s, clk := start(t, Options{AutoApprove: true, RefreshTTL: 90 * day, Quirks: q})
		rt := login(t, s).RefreshToken
		for range 4 { // day 80, 160, 240, 320
			clk.advance(80 * day)
			a := refresh(t, s, rt)
			wantTokens(t, a)
			rt = a.RefreshToken
		}
		clk.advance(50 * day) // day 370, 50 days unused
		wantError(t, refresh(t, s, rt), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("unused", func(t *testing.T) {
		s, clk := start(t, Options{AutoApprove: true, RefreshTTL: 90 * day, Quirks: q})
		rt := login(t, s).RefreshToken
		clk.advance(91 * day)
		wantError(t, refresh(t, s, rt), http.StatusBadRequest, "invalid_grant")
	})
}
