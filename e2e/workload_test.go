package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// writeKey writes a fresh P-256 key to dir/name (0600) and registers its
// public half for client at srv.
func writeKey(t *testing.T, srv *oauthtest.Server, client, path string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.AddClientKey(client, k.Public())
}

// TestWorkloadStorm: a client-credentials login (private_key_jwt) has no
// refresh token; when its token expires, 32 latch processes at once get a
// new one with one grant between them, every trial, and the login is never
// lost.
func TestWorkloadStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 320 processes")
	}
	const procs, trials = 32, 10
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	key := filepath.Join(e.dir, "svc.pem")
	writeKey(t, e.srv, "svc", key)
	r := e.run("auth", "login", "--client-id", "svc", "--grant", "client-credentials", "--private-key-file", key)
	if r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	mustContain(t, "login stderr", r.stderr, "renews it with the client credentials (RFC 6749 §4.4) grant")
	if tok := e.stored(); tok.Refreshable() {
		t.Fatalf("stored a refresh token: %+v", tok)
	}
	for trial := range trials {
		e.srv.ExpireAccessTokens()
		if trial%2 == 1 {
			e.expireLocally()
		}
		before := e.counters()
		res := e.runMany(procs, "api", "/v2/user")
		after := e.counters()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("trial %d, process %d: %v", trial, i, r)
			}
			mustContain(t, "stdout", r.stdout, `"login":"svc"`)
		}
		if n := after.ClientCredentialGrants - before.ClientCredentialGrants; n != 1 {
			t.Fatalf("trial %d: %d grants, want 1", trial, n)
		}
		if n := after.ClientAuthFailures; n != 0 {
			t.Fatalf("trial %d: %d client authentication failures", trial, n)
		}
	}
}

// TestWorkloadTokenExchange: a token-exchange login from a subject token
// file, renewed from the file again after the token expires — a rotated
// file is picked up — and each bad file gets exit 2 with its name, the
// working credential kept.
func TestWorkloadTokenExchange(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	sub := filepath.Join(e.dir, "sa-token")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(sub, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(e.srv.WorkloadToken("system:serviceaccount:ci:builder", e.srv.URL, time.Hour))
	if r := e.run("auth", "login", "--subject-token-file", sub); r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	if r := e.run("api", "/v2/user"); r.code != 0 || !strings.Contains(r.stdout, `"login":"system:serviceaccount:ci:builder"`) {
		t.Fatalf("api: %v", r)
	}

	// The kubelet rotates the file; the next renewal reads it.
	write(e.srv.WorkloadToken("system:serviceaccount:ci:rotated", e.srv.URL, time.Hour))
	e.srv.ExpireAccessTokens()
	if r := e.run("api", "/v2/user"); r.code != 0 || !strings.Contains(r.stdout, `"login":"system:serviceaccount:ci:rotated"`) {
		t.Fatalf("api after the rotation: %v", r)
	}
	good := e.stored()
	if r := e.run("auth", "status"); r.code != 0 || !strings.Contains(r.stdout, "renewed by the token exchange (RFC 8693) grant, reading the subject token in "+sub) {
		t.Errorf("auth status does not say how the token is renewed: %v", r)
	}

	for _, tt := range []struct {
		name, content, want string
		code                int
	}{
		{"missing", "", "does not exist", 2},
		{"empty", "\n", "is empty", 2},
		{"huge", strings.Repeat("x", 70<<10), "larger than 64 KiB", 2},
		{"expired", e.srv.WorkloadToken("w", e.srv.URL, -time.Minute), "expired at", 2},
		{"refused", e.srv.WorkloadToken("w", "https://elsewhere.example", time.Hour), "subject_token is invalid", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "missing" {
				os.Remove(sub)
			} else {
				write(tt.content)
			}
			e.expireLocally()
			r := e.run("api", "/v2/user")
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("want exit %d and %q; got %v", tt.code, tt.want, r)
			}
			if tt.name != "missing" && strings.Contains(r.stderr, tt.content[:min(len(tt.content), 40)]) && len(tt.content) > 2 {
				t.Errorf("the error quotes the file:\n%s", r.stderr)
			}
			if tok := e.stored(); tok.AccessToken != good.AccessToken {
				t.Errorf("the stored set changed: %+v", tok)
			}
		})
	}
	// A person's login on the same host forgets the grant.
	if r := e.run("auth", "login", "--grant", "authorization-code"); r.code != 0 || !e.stored().Refreshable() {
		t.Fatalf("browser login after a workload login: %v", r)
	}
	if r := e.run("auth", "status"); strings.Contains(r.stdout, "renewed by") {
		t.Errorf("the grant is still remembered: %v", r)
	}
}

// TestWorkloadGitHubActions: `--github-actions` fetches the job's OIDC
// token from the runner's request URL (here the dev server's emulation)
// at login and at each renewal.
func TestWorkloadGitHubActions(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour})
	u, tok := e.srv.ActionsRequest()
	if r := e.run("auth", "login", "--github-actions"); r.code != 2 || !strings.Contains(r.stderr, "id-token: write") {
		t.Fatalf("outside a job: want exit 2 naming the permission; got %v", r)
	}
	e.environ = append(e.environ, "ACTIONS_ID_TOKEN_REQUEST_URL="+u, "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+tok)
	r := e.run("--debug", "auth", "login", "--github-actions")
	if r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	if strings.Contains(r.stderr, tok) || strings.Contains(r.stderr, "eyJ") {
		t.Errorf("--debug shows the runner's request token or the job's JWT:\n%s", r.stderr)
	}
	mustContain(t, "--debug", r.stderr, "subject_token=[redacted")
	e.srv.ExpireAccessTokens()
	if r := e.run("api", "/v2/user"); r.code != 0 || !strings.Contains(r.stdout, `"login":"repo:dev/demo:ref:refs/heads/main"`) {
		t.Fatalf("api: %v", r)
	}
	if c := e.counters(); c.WorkloadTokens != 2 || c.Exchanges != 2 {
		t.Errorf("runner tokens %d, exchanges %d; want 2 and 2 (login, renewal)", c.WorkloadTokens, c.Exchanges)
	}
}

// TestWorkloadLoginErrors: flags that do not fit, an unreadable key and a
// refused client each exit 2 before anything is stored.
func TestWorkloadLoginErrors(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	key := filepath.Join(e.dir, "svc.pem")
	writeKey(t, e.srv, "svc", key)
	open := filepath.Join(e.dir, "open.pem")
	b, _ := os.ReadFile(key)
	os.WriteFile(open, b, 0o644)
	other := filepath.Join(e.dir, "other.pem")
	writeKey(t, oauthtest.NewServer(oauthtest.Options{}), "svc", other)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--grant", "client-credentials"}, "pass --client-id"},
		{[]string{"--grant", "password"}, "want client-credentials, token-exchange or authorization-code"},
		{[]string{"--grant", "token-exchange", "--client-id", "svc"}, "needs the subject token"},
		{[]string{"--client-id", "svc", "--private-key-file", key, "--device"}, "cannot be used with --device"},
		{[]string{"--client-id", "svc", "--private-key-file", filepath.Join(e.dir, "nope.pem")}, "no such file"},
		{[]string{"--client-id", "svc", "--private-key-file", open}, "chmod 600"},
		{[]string{"--client-id", "svc", "--private-key-file", other}, "invalid_client"},
		{[]string{"--client-id", "svc", "--grant", "client-credentials"}, "needs the client to authenticate"},
		{[]string{"--subject-token-file", key, "--github-actions"}, "use one"},
	} {
		r := e.run(append([]string{"auth", "login"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "PRIVATE KEY") {
			t.Errorf("%v: want exit 2 and %q; got %v", tt.args, tt.want, r)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "config", "config.json")); err == nil {
		if r := e.run("auth", "status"); strings.Contains(r.stdout+r.stderr, "svc") {
			t.Errorf("a failed login was remembered: %v", r)
		}
	}
}
