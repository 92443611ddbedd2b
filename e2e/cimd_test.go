package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// docServer serves client ID metadata documents: path → answer.
func docServer(t *testing.T, docs map[string]func(self string) (int, string)) *httptest.Server {
	var ts *httptest.Server
	ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		code, body := f(ts.URL + r.URL.Path)
		if code/100 == 3 {
			w.Header().Set("Location", ts.URL+"/good.json")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func docJSON(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }

// TestLoginClientMetadataDocument: with no client configured, a login
// uses the client ID metadata document's URL as its client ID where the
// server accepts one; the server fetches the document, the login and its
// refreshes work, and later logins reuse it.
func TestLoginClientMetadataDocument(t *testing.T) {
	e := newEnv(t, oauthtest.Options{AccessTTL: time.Hour, Registration: true})
	ds := docServer(t, map[string]func(string) (int, string){
		"/good.json": func(self string) (int, string) {
			return 200, docJSON(map[string]any{"client_id": self, "client_name": "latch", "redirect_uris": []string{"http://127.0.0.1/callback"},
				"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
		},
	})
	doc := ds.URL + "/good.json"
	r := e.run("auth", "login", "--client-metadata-url", doc)
	if r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	mustContain(t, "stderr", r.stderr, "Using the client ID metadata document "+doc+" as the client")
	if strings.Contains(r.stderr, "Registered latch") {
		t.Errorf("the login registered a client too:\n%s", r.stderr)
	}
	c := e.counters()
	if c.DocumentFetches == 0 || c.Registrations != 0 || c.CodeExchanges != 1 {
		t.Errorf("counters: %d document fetches, %d registrations, %d code exchanges; want ≥1, 0, 1", c.DocumentFetches, c.Registrations, c.CodeExchanges)
	}
	if tok := e.stored(); tok.ClientID != doc || !tok.Refreshable() {
		t.Errorf("stored client %q refreshable %t; want the document URL and a refresh token", tok.ClientID, tok.Refreshable())
	}
	e.srv.ExpireAccessTokens()
	if r := e.run("api", "/v2/user"); r.code != 0 {
		t.Fatalf("api after expiry: %v", r)
	}
	if n := e.counters().RefreshSuccesses; n != 1 {
		t.Errorf("refreshes = %d, want 1", n)
	}
	// A later login needs no flag: the document is the host's client now.
	if r := e.run("auth", "login"); r.code != 0 || strings.Contains(r.stderr, "Registered") {
		t.Fatalf("second login: %v", r)
	}
	if tok := e.stored(); tok.ClientID != doc {
		t.Errorf("second login's client %q, want %q", tok.ClientID, doc)
	}
}

// TestLoginClientMetadataDocumentRefused: a document that is not JSON,
// names another client_id, redirects, holds a secret or does not admit
// latch's redirect URI is exit 2 before any browser, and so is a server
// that does not accept documents or a second way to name the client.
func TestLoginClientMetadataDocumentRefused(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	ok := func(self string) map[string]any {
		return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/callback"}}
	}
	ds := docServer(t, map[string]func(string) (int, string){
		"/good.json":   func(self string) (int, string) { return 200, docJSON(ok(self)) },
		"/html.json":   func(string) (int, string) { return 200, "<html>sign in</html>" },
		"/other.json":  func(string) (int, string) { return 200, docJSON(ok("https://evil.example/client.json")) },
		"/moved.json":  func(string) (int, string) { return 302, "" },
		"/secret.json": func(self string) (int, string) { m := ok(self); m["client_secret"] = "s3cret"; return 200, docJSON(m) },
		"/redirect.json": func(self string) (int, string) {
			m := ok(self)
			m["redirect_uris"] = []string{"https://app.example/cb"}
			return 200, docJSON(m)
		},
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-metadata-url", ds.URL + "/html.json"}, "not a JSON object"},
		{[]string{"--client-metadata-url", ds.URL + "/other.json"}, "names another client_id (https://evil.example/client.json)"},
		{[]string{"--client-metadata-url", ds.URL + "/moved.json"}, "the URL redirects (HTTP 302)"},
		{[]string{"--client-metadata-url", ds.URL + "/secret.json"}, "holds a client secret"},
		{[]string{"--client-metadata-url", ds.URL + "/redirect.json"}, "does not list latch's redirect URI http://127.0.0.1/callback"},
		{[]string{"--client-metadata-url", ds.URL + "/missing.json"}, "HTTP 404"},
		{[]string{"--client-metadata-url", "http://example.com/client.json"}, "must be https"},
		{[]string{"--client-metadata-url", ds.URL + "/"}, "must have a path"},
		{[]string{"--client-metadata-url", ds.URL + "/good.json", "--client-id", "latch-cli"}, "use one"},
		{[]string{"--client-metadata-url", ds.URL + "/good.json", "--auth-url", e.srv.URL + "/authorize", "--token-url", e.srv.URL + "/oauth/token"},
			"does not say it accepts client ID metadata documents"},
	} {
		r := e.run(append([]string{"auth", "login"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "s3cret") || strings.Contains(r.stderr, "Waiting") {
			t.Errorf("%v: want exit 2 and %q before any browser; got %v", tt.args, tt.want, r)
		}
	}
	if c := e.counters(); c.CodeExchanges != 0 {
		t.Errorf("code exchanges = %d, want 0", c.CodeExchanges)
	}
}
