package authcode_test

import (
	"context"
	"io"
	"net/http"
	"strings"
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
	cfg := discovery.Config(m, "latch-cli", []string{"offline_access"})
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

// TestDevServerPaste logs in as over SSH: the browser, elsewhere, cannot
// reach the loopback listener; the person pastes the URL it was sent to.
func TestDevServerPaste(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	defer srv.Close()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	opts := authcode.Options{Paste: pr, IssuerRequired: m.IssParameterSupported, OpenURL: func(ctx context.Context, u string) error {
		to, err := oauthtest.RedirectedTo(ctx, u)
		if err != nil {
			return err
		}
		go io.WriteString(pw, to+"\n")
		return nil
	}}
	tok, err := authcode.Login(t.Context(), discovery.Config(m, "latch-cli", []string{"offline_access"}), opts)
	if err != nil || !tok.Refreshable() {
		t.Fatalf("Login = %v, %v; want a refreshable token", tok, err)
	}
	if c := srv.Counters(); c.CodeExchanges != 1 {
		t.Errorf("code exchanges = %d, want 1", c.CodeExchanges)
	}
}

// TestDevServerIssuer: the dev server sends iss (RFC 9207) and says so;
// when it says so and does not send it, the login is refused before any
// token call.
func TestDevServerIssuer(t *testing.T) {
	for _, iss := range []string{"", "missing", "none"} {
		t.Run("iss="+iss, func(t *testing.T) {
			srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
			defer srv.Close()
			srv.SetQuirks(oauthtest.Quirks{Iss: iss})
			m, err := discovery.Fetch(t.Context(), nil, srv.URL)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if m.IssParameterSupported != (iss != "none") {
				t.Errorf("metadata: authorization_response_iss_parameter_supported = %v", m.IssParameterSupported)
			}
			_, err = authcode.Login(t.Context(), discovery.Config(m, "latch-cli", []string{"offline_access"}),
				authcode.Options{OpenURL: srv.Browser(), IssuerRequired: m.IssParameterSupported})
			if refused := iss == "missing"; refused != (err != nil) || refused && !strings.Contains(err.Error(), "mix-up") {
				t.Fatalf("Login: %v", err)
			}
			if c := srv.Counters(); c.CodeExchanges != 0 && iss == "missing" {
				t.Errorf("code exchanges = %d, want 0", c.CodeExchanges)
			}
		})
	}
}
