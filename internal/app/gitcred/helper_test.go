package gitcred

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
)

const host = "https://auth.example.com"

// helperDir is a config dir logged in to host (org "" and "acme"),
// tokens in the file store, as latch auth login leaves it.
func helperDir(t *testing.T, expiry time.Time) string {
	t.Helper()
	dir := t.TempDir()
	cf := &config.File{Host: host, Hosts: map[string]*config.Host{host: {
		Store: "file", Orgs: []string{"", "acme"}, APIURL: "https://api.example.com",
		Metadata: &discovery.Metadata{Issuer: host + "/", TokenEndpoint: host + "/token"},
	}}}
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

const apiReq = "protocol=https\nhost=api.example.com\n\n"

// The fast path answers exactly what latch credential git would, and
// hands every case it does not own to latch.
func TestFastAnswer(t *testing.T) {
	ctx := context.Background()
	valid := helperDir(t, time.Now().Add(time.Hour))
	expired := helperDir(t, time.Now().Add(time.Minute)) // within the early-refresh margin
	rejected := helperDir(t, time.Now().Add(time.Hour))
	os.MkdirAll(settings.RejectedDir(rejected), 0o700)
	os.WriteFile(settings.RejectedMark(rejected, "at-"), nil, 0o600)

	for _, c := range []struct {
		name, dir, input string
		args, env        []string
		want             string // "" with ok: answered with nothing
		ok               bool
	}{
		{"get", valid, apiReq, []string{"get"}, nil, "username=oauth2\npassword=at-\npassword_expiry_utc=", true},
		{"org flag", valid, apiReq, []string{"--org", "acme", "get"}, nil, "password=at-acme\n", true},
		{"org env", valid, apiReq, []string{"get"}, []string{"LATCH_ORG=acme"}, "password=at-acme\n", true},
		{"authtype", valid, "protocol=https\nhost=api.example.com\ncapability[]=authtype\n\n", []string{"get"}, nil, "authtype=Bearer\ncredential=at-\nephemeral=1\n", true},
		{"username", valid, apiReq, []string{"--username=x-access-token", "get"}, nil, "username=x-access-token\n", true},
		{"other origin", valid, "protocol=https\nhost=git.example.com\n\n", []string{"get"}, nil, "", true},
		{"--url", valid, "protocol=https\nhost=git.example.com\n\n", []string{"--url", "https://git.example.com", "get"}, nil, "password=at-\n", true},
		{"store", valid, apiReq, []string{"store"}, nil, "", true},
		{"near expiry", expired, apiReq, []string{"get"}, nil, "", false},
		{"rejected", rejected, apiReq, []string{"get"}, nil, "", false},
		{"erase", valid, apiReq, []string{"erase"}, nil, "", false},
		{"debug", valid, apiReq, []string{"get"}, []string{"LATCH_DEBUG=1"}, "", false},
		{"static token", valid, apiReq, []string{"get"}, []string{"LATCH_TOKEN=x"}, "", false},
		{"fleet store", valid, apiReq, []string{"get"}, []string{"LATCH_CREDENTIAL_STORE=postgres://db/latch"}, "", false},
		{"auto store", valid, apiReq, []string{"--credential-store", "auto", "get"}, nil, "", false},
		{"unknown org", valid, apiReq, []string{"--org", "nope", "get"}, nil, "", false},
		{"unknown flag", valid, apiReq, []string{"--debug", "get"}, nil, "", false},
		{"help", valid, apiReq, []string{"--help"}, nil, "", false},
		{"bad input", valid, "no equals sign\n", []string{"get"}, nil, "", false},
		{"no host", t.TempDir(), apiReq, []string{"get"}, nil, "", false},
		{"bad host", valid, apiReq, []string{"--host", "auth.example.com", "get"}, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := env(append(c.env, "LATCH_CONFIG_DIR="+c.dir)...)
			got, ok := fastAnswer(ctx, c.args, []byte(c.input), getenv)
			if ok != c.ok || !strings.Contains(got, c.want) || (c.want == "" && got != "") {
				t.Fatalf("fastAnswer(%q) = %q, %v; want %q, %v", c.args, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	flags, op, ok := parseArgs([]string{"--host", "https://h", "--org=acme", "--url", "https://g", "get"})
	if !ok || op != "get" || flags["host"] != "https://h" || flags["org"] != "acme" || flags["url"] != "https://g" {
		t.Fatalf("parseArgs = %v, %q, %v", flags, op, ok)
	}
	for _, args := range [][]string{{}, {"get", "store"}, {"--host"}, {"-h"}, {"--insecure-store-plaintext", "get"}} {
		if _, _, ok := parseArgs(args); ok {
			t.Errorf("parseArgs(%q) ok; want a hand-over to latch", args)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		bound, protocol, host string
		want                  bool
	}{
		{"https://git.example.com", "https", "git.example.com", true},
		{"https://git.example.com", "https", "GIT.example.com:443", true},
		{"https://git.example.com:443/path", "https", "git.example.com", true},
		{"http://127.0.0.1:8080", "http", "127.0.0.1:8080", true},
		{"https://git.example.com", "http", "git.example.com", false},
		{"https://git.example.com", "https", "git.example.com:8443", false},
		{"https://git.example.com", "https", "evil.example.com", false},
		{"https://git.example.com", "", "git.example.com", false},
	} {
		if got := SameOrigin(c.bound, c.protocol, c.host); got != c.want {
			t.Errorf("SameOrigin(%q, %q, %q) = %v, want %v", c.bound, c.protocol, c.host, got, c.want)
		}
	}
}

// The helper answers at the blank line, as latch does, without waiting
// for the end of its input.
func TestReadInputStopsAtBlankLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString("protocol=https\r\nhost=x\r\n\r\nnot read\n")
	got, err := readInput(r)
	if err != nil || string(got) != "protocol=https\r\nhost=x\r\n\r\n" {
		t.Fatalf("readInput = %q, %v", got, err)
	}
}

// TestRoute is the decision both helpers make (the fast path and latch
// credential git), so one table covers both.
func TestRoute(t *testing.T) {
	req := func(s string) *Request {
		r, err := ReadRequest(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ours := "protocol=https\nhost=git.example.com\n\n"
	for _, tt := range []struct {
		op, in, bound string
		want          Action
		err           bool
	}{
		{"get", ours, "https://git.example.com", Answer, false},
		{"get", ours, "https://git.example.com/org/repo", Answer, false},
		{"erase", ours, "https://git.example.com", Erase, false},
		{"store", ours, "https://git.example.com", Ignore, false},
		{"store", ours, "ftp://anything", Ignore, false},
		{"get", "protocol=https\nhost=other.example\n\n", "https://git.example.com", NotOurs, false},
		{"get", "protocol=http\nhost=git.example.com\n\n", "https://git.example.com", NotOurs, false},
		{"get", ours, "http://git.example.com", Ignore, true}, // plain http off loopback
		{"get", "protocol=http\nhost=127.0.0.1:8080\n\n", "http://127.0.0.1:8080", Answer, false},
		{"erase", ours, "ftp://git.example.com", Ignore, true},
		{"list", ours, "https://git.example.com", Ignore, true},
	} {
		got, err := Route(tt.op, req(tt.in), tt.bound)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("Route(%s, %q, %s) = %v, %v; want %v, error %v", tt.op, tt.in, tt.bound, got, err, tt.want, tt.err)
		}
	}
}
