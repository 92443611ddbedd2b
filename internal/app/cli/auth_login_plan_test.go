package cli

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/latchdev/latch/internal/app/config"
)

// loginFlags parses args as `auth login` does and returns the options.
func loginFlags(t *testing.T, args ...string) *loginOptions {
	t.Helper()
	a := &App{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	var lo *loginOptions
	parse(t, a.newLoginCmd(func(o *loginOptions) error { lo = o; return nil }), args...)
	return lo
}

// TestLoginSettings: the flags given replace what the host remembers, the
// ones not given keep it, and a bad value is a usage error naming its flag.
func TestLoginSettings(t *testing.T) {
	remembered := &config.Host{Scopes: []string{"read"}, Params: url.Values{"audience": {"api"}},
		Endpoints: &config.Endpoints{TokenURL: "https://as.example/token", AuthURL: "https://as.example/auth"}}
	tests := []struct {
		name              string
		args              []string
		scopes            []string
		params            url.Values
		tokenURL, authURL string
		err               string
	}{
		{name: "nothing given keeps the host's", scopes: []string{"read"}, params: url.Values{"audience": {"api"}},
			tokenURL: "https://as.example/token", authURL: "https://as.example/auth"},
		{name: "empty --scopes asks for none", args: []string{"--scopes", ""}, scopes: []string{}, params: url.Values{"audience": {"api"}},
			tokenURL: "https://as.example/token", authURL: "https://as.example/auth"},
		{name: "--param replaces every parameter", args: []string{"--param", "prompt=consent", "--resource", "https://api.example"},
			scopes: []string{"read"}, params: url.Values{"prompt": {"consent"}, "resource": {"https://api.example"}},
			tokenURL: "https://as.example/token", authURL: "https://as.example/auth"},
		{name: "one endpoint flag replaces one endpoint", args: []string{"--token-url", "https://other.example/token"},
			scopes: []string{"read"}, params: url.Values{"audience": {"api"}}, tokenURL: "https://other.example/token", authURL: "https://as.example/auth"},
		{name: "--param without =", args: []string{"--param", "prompt"}, err: `--param "prompt": want KEY=VALUE`},
		{name: "--param latch sets", args: []string{"--param", "scope=x"}, err: "--param scope: latch sets this parameter itself; use --scopes"},
		{name: "plain-http resource", args: []string{"--resource", "http://api.example"}, err: "--resource:"},
		{name: "plain-http endpoint", args: []string{"--auth-url", "http://as.example/auth"}, err: "--auth-url:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scopes, params, e, err := loginFlags(t, tt.args...).settings(remembered)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || exitCode(err) != ExitUsage {
					t.Fatalf("err = %v (exit %d), want a usage error with %q", err, exitCode(err), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(scopes, tt.scopes) || !reflect.DeepEqual(params, tt.params) || e.TokenURL != tt.tokenURL || e.AuthURL != tt.authURL {
				t.Errorf("settings = %q, %v, %+v; want %q, %v, token %s auth %s", scopes, params, e, tt.scopes, tt.params, tt.tokenURL, tt.authURL)
			}
		})
	}
}

// TestPickClientAuth: one method, never two (a second try would spend the
// grant twice), and a secret only where it is sent.
func TestPickClientAuth(t *testing.T) {
	tests := []struct {
		method, secret string
		supported      []string
		want, err      string
	}{
		{"", "", nil, "", ""},
		{"", "s", nil, authBasic, ""},
		{"", "s", []string{authPost}, authPost, ""},
		{"", "s", []string{authPost, authBasic}, authBasic, ""},
		{authPost, "s", []string{authBasic}, authPost, ""},
		{authNone, "", nil, authNone, ""},
		{authNone, "s", nil, "", "a public client sends no secret"},
		{authBasic, "", nil, "", "needs the client secret"},
	}
	for _, tt := range tests {
		got, err := pickClientAuth(tt.method, tt.secret, tt.supported)
		if tt.err != "" {
			var ee *ExitError
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ee) || ee.Code != ExitUsage {
				t.Errorf("pickClientAuth(%q, %q, %q) = %q, %v; want a usage error with %q", tt.method, tt.secret, tt.supported, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("pickClientAuth(%q, %q, %q) = %q, %v; want %q", tt.method, tt.secret, tt.supported, got, err, tt.want)
		}
	}
}

func TestLoginScopes(t *testing.T) {
	for _, tt := range []struct{ asked, supported, want []string }{
		{nil, nil, defaultScopes},
		{nil, []string{"openid", "email"}, []string{"openid"}},
		{nil, []string{"email"}, nil},
		{[]string{}, []string{"openid"}, []string{}},
		{[]string{"repo"}, nil, []string{"repo"}},
	} {
		if got := loginScopes(tt.asked, tt.supported); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("loginScopes(%q, %q) = %q, want %q", tt.asked, tt.supported, got, tt.want)
		}
	}
}
