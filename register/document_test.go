package register

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckClientID(t *testing.T) {
	for _, ok := range []string{"https://app.example/client.json", "https://app.example/a/b", "http://127.0.0.1:8080/c.json", "http://[::1]/c"} {
		if err := CheckClientID(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"https://app.example":             "must have a path",
		"https://app.example/":            "must have a path",
		"https://app.example/c.json#x":    "fragment",
		"https://u:p@app.example/c.json":  "user information",
		"http://app.example/c.json":       "must be https",
		"ftp://app.example/c.json":        "must be https",
		"https://app.example/a/../c.json": ". or ..",
		"/c.json":                         "absolute URL",
	} {
		if err := CheckClientID(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
	}
}

func TestAllowsRedirect(t *testing.T) {
	d := &Document{RedirectURIs: []string{"http://127.0.0.1/callback", "https://app.example/cb"}}
	for uri, want := range map[string]bool{
		"http://127.0.0.1/callback":      true,
		"http://127.0.0.1:4711/callback": true, // RFC 8252 §7.3
		"https://app.example/cb":         true,
		"http://127.0.0.1:4711/other":    false,
		"http://localhost:4711/callback": false,
		"https://app.example:8443/cb":    false,
		"http://127.0.0.1:1/callback?x":  false,
	} {
		if got := d.AllowsRedirect(uri); got != want {
			t.Errorf("%s: %t, want %t", uri, got, want)
		}
	}
}

// TestFetchDocumentHostile: what the document's host sends is shown only
// escaped, on one line.
func TestFetchDocumentHostile(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"client_id":"https://evil.example/\u001b[2J\nlatch: logged in","redirect_uris":["x"]}`))
	}))
	defer ts.Close()
	_, err := FetchDocument(t.Context(), nil, ts.URL+"/c.json")
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Errorf("got %q; want an error with the hostile client_id escaped", err)
	}
}
