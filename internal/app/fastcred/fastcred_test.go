package fastcred

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/endpoint"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
)

const host = "https://auth.example.com"

// loggedIn is a config dir logged in to host (org "" and "acme"), with
// registry.example.com mapped to org acme, tokens in the file store.
func loggedIn(t *testing.T, expiry time.Time) string {
	t.Helper()
	dir := t.TempDir()
	cf := &config.File{Host: host, Hosts: map[string]*config.Host{host: {
		Store: "file", Orgs: []string{"", "acme"},
		Metadata: &endpoint.Metadata{Issuer: host + "/", TokenEndpoint: host + "/token"},
	}}, Docker: map[string]*config.DockerRegistry{"registry.example.com": {Host: host, Org: "acme", Username: "u"}}}
	raw, _ := json.Marshal(cf)
	if err := os.WriteFile(filepath.Join(dir, config.FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{"", "acme"} {
		tok := &latch.Token{AccessToken: "at-" + org, TokenType: "Bearer", RefreshToken: "rt", Expiry: expiry,
			IssuedAt: expiry.Add(-time.Hour), Issuer: host, ClientID: settings.DefaultClient, Account: org}
		if err := filestore.New(dir).Save(context.Background(), tok.Key(), nil, tok); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(vars ...string) func(string) string {
	return func(k string) string {
		for _, kv := range vars {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
}

// dockerGet answers for a mapped registry with its own account, and
// leaves every other case to latch.
func TestDockerGet(t *testing.T) {
	ctx := context.Background()
	valid, near := loggedIn(t, time.Now().Add(time.Hour)), loggedIn(t, time.Now().Add(time.Minute))
	for _, c := range []struct {
		name, dir, input string
		env              []string
		want             string
		ok               bool
	}{
		{"mapped", valid, "registry.example.com\n", nil, `{"Secret":"at-acme","ServerURL":"registry.example.com","Username":"u"}` + "\n", true},
		{"as a URL", valid, "https://registry.example.com/v2/", nil, `"ServerURL":"https://registry.example.com/v2/"`, true},
		{"the mapping's org wins", valid, "registry.example.com", []string{"LATCH_ORG="}, `"Secret":"at-acme"`, true},
		{"unmapped", valid, "other.example.com", nil, "", false},
		{"plain http", valid, "http://registry.example.com", nil, "", false},
		{"near expiry", near, "registry.example.com", nil, "", false},
		{"static token", valid, "registry.example.com", []string{"LATCH_TOKEN=x"}, "", false},
		{"debug", valid, "registry.example.com", []string{"LATCH_DEBUG=1"}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := dockerGet(ctx, c.input, env(append(c.env, "LATCH_CONFIG_DIR="+c.dir)...))
			if ok != c.ok || !strings.Contains(got, c.want) || (!c.ok && got != "") {
				t.Fatalf("dockerGet(%q) = %q, %v; want %q, %v", c.input, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestKube(t *testing.T) {
	ctx := context.Background()
	valid := loggedIn(t, time.Now().Add(time.Hour))
	v1beta1 := `KUBERNETES_EXEC_INFO={"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential"}`
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
		ok   bool
	}{
		{"default", []string{"credential", "kubectl"}, nil, `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"expirationTimestamp":"`, true},
		{"login flags", []string{"--host", host, "--org", "acme", "credential", "kubectl"}, nil, `"token":"at-acme"`, true},
		{"exec info", []string{"--org=", "credential", "kubectl"}, []string{v1beta1}, `"apiVersion":"client.authentication.k8s.io/v1beta1"`, true},
		{"exec info beats the flag", []string{"credential", "kubectl", "--api-version", "client.authentication.k8s.io/v1"}, []string{v1beta1}, `v1beta1`, true},
		{"--api-version", []string{"credential", "kubectl", "--api-version=client.authentication.k8s.io/v1beta1"}, nil, `v1beta1`, true},
		{"bad version", []string{"credential", "kubectl", "--api-version", "v2"}, nil, "", false},
		{"bad exec info", []string{"credential", "kubectl"}, []string{"KUBERNETES_EXEC_INFO={"}, "", false},
		{"not kubectl", []string{"credential", "git"}, nil, "", false},
		{"flag after", []string{"credential", "kubectl", "--host", host}, nil, "", false},
		{"unknown flag", []string{"--debug", "credential", "kubectl"}, nil, "", false},
		{"unknown org", []string{"--org", "nope", "credential", "kubectl"}, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := kube(ctx, c.args, env(append(c.env, "LATCH_CONFIG_DIR="+valid)...))
			if ok != c.ok || !strings.Contains(got, c.want) || (!c.ok && got != "") {
				t.Fatalf("kube(%q) = %q, %v; want %q, %v", c.args, got, ok, c.want, c.ok)
			}
		})
	}
}
