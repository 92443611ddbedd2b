package exchange_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/exchange"
	"github.com/latchdev/latch/oauthtest"
)

func devConfig(t *testing.T, srv *oauthtest.Server) *latch.Config {
	t.Helper()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return discovery.Config(m, "latch-cli", nil)
}

func whoAmI(t *testing.T, srv *oauthtest.Server, tok *latch.Token) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v2/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u oauthtest.User
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v2/user: %d, %v", resp.StatusCode, err)
	}
	return u.Login
}

// TestExchange: a workload's subject token for the server's audience
// becomes an access token of the API, for the workload's subject, with
// no refresh token (RFC 8693 §2.2.1).
func TestExchange(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	for _, typ := range []string{exchange.JWT, exchange.IDToken, ""} {
		sub := srv.WorkloadToken("system:serviceaccount:ci:builder", srv.URL, time.Hour)
		tok, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{SubjectToken: sub, SubjectTokenType: typ})
		if err != nil {
			t.Fatalf("type %q: %v", typ, err)
		}
		if tok.Refreshable() || tok.Expiry.IsZero() {
			t.Errorf("refreshable %t, expiry %v; want an access token with its expiry only", tok.Refreshable(), tok.Expiry)
		}
		if who := whoAmI(t, srv, tok); who != "system:serviceaccount:ci:builder" {
			t.Errorf("API says %q", who)
		}
	}
	// Over HTTP, as `latch dev server` users mint one.
	resp, err := http.PostForm(srv.URL+"/_dev/workload-token", map[string][]string{"subject": {"ci-job"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{SubjectToken: strings.TrimSpace(string(b))})
	if err != nil || whoAmI(t, srv, tok) != "ci-job" {
		t.Fatalf("token from /_dev/workload-token: %v", err)
	}
	if c := srv.Counters(); c.Exchanges != 4 {
		t.Errorf("exchanges = %d, want 4", c.Exchanges)
	}
}

// TestExchangeRefused: an expired subject token, one for another
// audience and one from another issuer are refused with invalid_request
// (RFC 8693 §2.2.2), and the error never quotes the token.
func TestExchangeRefused(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	other := oauthtest.NewServer(oauthtest.Options{})
	defer other.Close()
	for name, sub := range map[string]string{
		"expired":          srv.WorkloadToken("w", srv.URL, -time.Minute),
		"other audience":   srv.WorkloadToken("w", "https://api.elsewhere.example", time.Hour),
		"other issuer":     other.WorkloadToken("w", srv.URL, time.Hour),
		"not a JWT at all": "opaque-subject-token",
	} {
		_, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{SubjectToken: sub})
		var te *latch.TokenError
		if !errors.As(err, &te) || te.Code != "invalid_request" || strings.Contains(err.Error(), sub) {
			t.Errorf("%s: %v; want invalid_request (RFC 8693 §2.2.2) without the token", name, err)
		}
	}
	if _, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{}); err == nil {
		t.Error("no subject token: no error")
	}
	if _, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{SubjectToken: "x", RequestedTokenType: exchange.IDToken}); err == nil {
		t.Error("requested id_token: no error")
	}
}

// TestGitHubActions: the runner's OIDC token, fetched as a job does, is
// exchanged; a wrong request token is refused without echoing it.
func TestGitHubActions(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	u, rt := srv.ActionsRequest()
	sub, err := exchange.GitHubActions(t.Context(), nil, u, rt, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := exchange.Token(t.Context(), devConfig(t, srv), exchange.Request{SubjectToken: sub})
	if err != nil {
		t.Fatal(err)
	}
	if who := whoAmI(t, srv, tok); who != "repo:dev/demo:ref:refs/heads/main" {
		t.Errorf("API says %q", who)
	}
	_, err = exchange.GitHubActions(t.Context(), nil, u, "wrong-request-token", srv.URL)
	if err == nil || strings.Contains(err.Error(), "wrong-request-token") || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong request token: %v", err)
	}
	if _, err := exchange.GitHubActions(t.Context(), nil, "", "", srv.URL); err == nil || !strings.Contains(err.Error(), "id-token: write") {
		t.Errorf("outside Actions: %v; want the permission named", err)
	}
	if _, err := exchange.GitHubActions(t.Context(), nil, "http://runner.example/x", rt, srv.URL); err == nil {
		t.Error("plain http to a non-loopback runner: no error")
	}
}

// TestReadFile: a subject token file that is missing, empty, huge, not
// one line or holds an expired JWT gets a message that names the file and
// never its content; a good one is read anew each time (a rotated
// Kubernetes token is picked up).
func TestReadFile(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	dir := t.TempDir()
	now := time.Now()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	expired := srv.WorkloadToken("w", srv.URL, -time.Minute)
	for name, tt := range map[string]struct{ path, want string }{
		"missing":  {filepath.Join(dir, "nope"), "does not exist"},
		"empty":    {write("empty", " \n"), "is empty"},
		"huge":     {write("huge", strings.Repeat("secretsecret", 10000)), "larger than 64 KiB"},
		"two":      {write("two", "secret-a\nsecret-b\n"), "more than one line"},
		"expired":  {write("expired", expired), "expired at"},
		"a folder": {dir, "subject token file"},
	} {
		_, err := exchange.ReadFile(tt.path, now)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") ||
			strings.Contains(err.Error(), expired[:20]) || strings.Contains(err.Error(), "eyJ") {
			t.Errorf("%s: %v; want %q, no content", name, err, tt.want)
		}
	}
	p := write("token", srv.WorkloadToken("first", srv.URL, time.Hour)+"\n")
	a, err := exchange.ReadFile(p, now)
	if err != nil {
		t.Fatal(err)
	}
	write("token", srv.WorkloadToken("second", srv.URL, time.Hour))
	b, err := exchange.ReadFile(p, now)
	if err != nil || a == b {
		t.Errorf("rotated file: %v, same token %t", err, a == b)
	}
}

func TestRequestPrintsNoToken(t *testing.T) {
	r := exchange.Request{SubjectToken: "subject-secret", ActorToken: "actor-secret", Audience: []string{"api"}}
	s := fmt.Sprintf("%v %+v %#v %s", r, r, r, r)
	if strings.Contains(s, "secret") {
		t.Errorf("Request prints as %q", s)
	}
}

func FuzzExpiry(f *testing.F) {
	f.Add("a.eyJleHAiOjE4MDAwMDAwMDB9.b")
	f.Add("..")
	f.Add("a.eyJleHAiOiIxIn0.b")
	f.Fuzz(func(t *testing.T, s string) {
		exp, ok := exchange.Expiry(s)
		if ok && exp.IsZero() {
			t.Errorf("ok with a zero time for %q", s)
		}
	})
}
