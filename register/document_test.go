package register

import (
	"bytes"
	"io"
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
		if err := CheckClientID(bad); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "u:p@") {
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

// FuzzFetchDocument: whatever the document's host answers, FetchDocument
// does not panic, and an error is one line without control characters.
func FuzzFetchDocument(f *testing.F) {
	f.Add(200, []byte(`{"client_id":"https://app.example/c.json","redirect_uris":["http://127.0.0.1/callback"]}`))
	f.Add(200, []byte(`{"client_id":"\u001b[2J","redirect_uris":[]}`))
	f.Add(302, []byte(``))
	f.Add(200, []byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		d, err := FetchDocument(t.Context(), hc, "https://app.example/c.json")
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\n\r") {
			t.Errorf("error %q", err)
		}
		if err == nil && (d.ClientID != "https://app.example/c.json" || len(d.RedirectURIs) == 0) {
			t.Errorf("accepted %+v", d)
		}
	})
}
