package discovery_test

import (
	"testing"

	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
)

// TestDevServer discovers the dev server's endpoints over HTTP.
func TestDevServer(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if m.Issuer != srv.URL {
		t.Errorf("issuer = %q, want %q", m.Issuer, srv.URL)
	}
	for name, got := range map[string]string{
		"authorization_endpoint":        m.AuthorizationEndpoint,
		"token_endpoint":                m.TokenEndpoint,
		"device_authorization_endpoint": m.DeviceAuthorizationEndpoint,
		"revocation_endpoint":           m.RevocationEndpoint,
	} {
		if got == "" {
			t.Errorf("%s is empty", name)
		}
	}
	found := false
	for _, c := range m.CodeChallengeMethodsSupported {
		found = found || c == "S256"
	}
	if !found {
		t.Errorf("code_challenge_methods_supported = %q, want S256", m.CodeChallengeMethodsSupported)
	}
}
