package oauthtest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchdev/latch/oauthtest"
)

// TestClientMetadataDocuments: the server fetches a client_id that is a
// URL and takes its redirect URIs from it; a document that is not JSON,
// names another client, redirects or holds a secret makes the client
// unknown, and a redirect URI the document does not list is refused,
// without a redirect to it.
func TestClientMetadataDocuments(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	defer srv.Close()
	var ds *httptest.Server
	ds = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := ds.URL + r.URL.Path
		doc := map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1/callback"}}
		switch r.URL.Path {
		case "/html.json":
			w.Write([]byte("<html>"))
			return
		case "/other.json":
			doc["client_id"] = "https://evil.example/c.json"
		case "/secret.json":
			doc["client_secret"] = "x"
		case "/moved.json":
			http.Redirect(w, r, ds.URL+"/good.json", http.StatusFound)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	ds.Start()
	defer ds.Close()
	authorize := func(client, redirect string) *http.Response {
		q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(srv.URL + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tt := range []struct {
		path, redirect string
		want           int
	}{
		{"/good.json", "http://127.0.0.1:4711/callback", http.StatusFound}, // to the login page: any loopback port
		{"/html.json", "http://127.0.0.1:4711/callback", http.StatusBadRequest},
		{"/other.json", "http://127.0.0.1:4711/callback", http.StatusBadRequest},
		{"/secret.json", "http://127.0.0.1:4711/callback", http.StatusBadRequest},
		{"/moved.json", "http://127.0.0.1:4711/callback", http.StatusBadRequest},
		{"/good.json", "http://127.0.0.1:4711/elsewhere", http.StatusBadRequest},
	} {
		resp := authorize(ds.URL+tt.path, tt.redirect)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != tt.want || (tt.want == http.StatusFound) != strings.HasPrefix(loc, "/login?") {
			t.Errorf("%s with %s: HTTP %d to %q, want %d", tt.path, tt.redirect, resp.StatusCode, loc, tt.want)
		}
	}
	if c := srv.Counters(); c.DocumentFetches == 0 {
		t.Error("no document fetched")
	}
}
