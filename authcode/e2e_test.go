package authcode_test

import (
	"net/http"
	"testing"

	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
)

// TestDevServer logs in against the dev server: discovery, the browser
// follows the authorize URL back to the loopback callback, and the code
// is redeemed with its PKCE verifier.
func TestDevServer(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	defer srv.Close()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	cfg := m.Config("latch-cli", []string{"offline_access"})
	tok, err := authcode.Login(t.Context(), cfg, authcode.Options{OpenURL: srv.Browser()})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if tok.AccessToken == "" || !tok.Refreshable() || tok.Issuer != srv.URL || tok.ClientID != "latch-cli" {
		t.Errorf("token: access=%t refreshable=%t issuer=%q client=%q", tok.AccessToken != "", tok.Refreshable(), tok.Issuer, tok.ClientID)
	}
	if c := srv.Counters(); c.CodeExchanges != 1 || c.TokenCalls["authorization_code"] != 1 {
		t.Errorf("counters: code exchanges %d, code token calls %d; want 1 and 1", c.CodeExchanges, c.TokenCalls["authorization_code"])
	}

	// The token works at the resource.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v2/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v2/user: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/user = %d, want 200", resp.StatusCode)
	}
}
