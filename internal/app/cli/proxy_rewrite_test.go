package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// URLs in answers that point into the API point at the proxy, on a path
// boundary; others pass unchanged (LESSONS 29).
func TestProxyRewritesOnPathBoundary(t *testing.T) {
	target, _ := url.Parse("http://api.example:8080/v3")
	p := &proxyHandler{target: target, base: "http://127.0.0.1:39225"}
	req, _ := url.Parse("http://api.example:8080/v3/items?page=1")
	for ref, want := range map[string]string{
		"http://api.example:8080/v3/items?page=2": "http://127.0.0.1:39225/items?page=2",
		"/v3/items?page=3#top":                    "http://127.0.0.1:39225/items?page=3#top",
		"http://api.example:8080/v3":              "http://127.0.0.1:39225",
		"http://api.example:8080/v3x/foo":         "http://api.example:8080/v3x/foo",
		"/v3x/foo":                                "/v3x/foo",
		"/other":                                  "/other",
		"https://api.example:8080/v3/items":       "https://api.example:8080/v3/items",
		"http://elsewhere.example/v3/items":       "http://elsewhere.example/v3/items",
		"http://api.example:8080/v3/a%2Fb?x=%20y": "http://127.0.0.1:39225/a%2Fb?x=%20y",
		"items?page=4":                            "http://127.0.0.1:39225/items?page=4",
	} {
		if got := p.toProxy(req, ref); got != want {
			t.Errorf("toProxy(%q) = %q, want %q", ref, got, want)
		}
	}
	link := `<http://api.example:8080/v3/items?page=2>; rel="next", <http://api.example:8080/v3x/items>; rel="x", <https://docs.example/>; rel="help"; title="a <b> c"`
	want := `<http://127.0.0.1:39225/items?page=2>; rel="next", <http://api.example:8080/v3x/items>; rel="x", <https://docs.example/>; rel="help"; title="a <b> c"`
	if got := rewriteLinks(link, func(r string) string { return p.toProxy(req, r) }); got != want {
		t.Errorf("rewriteLinks:\n got %s\nwant %s", got, want)
	}
	unix := &proxyHandler{target: target, base: "unix:/tmp/p.sock"}
	if got := unix.toProxy(req, "/v3/items"); got != "/v3/items" {
		t.Errorf("on a Unix socket: %q", got)
	}
}

// A path with . or .. segments, raw or percent-encoded, never reaches the
// API host with the token.
func TestProxyRefusesDotSegments(t *testing.T) {
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RawPath+"|"+r.URL.Path)
		if r.URL.Path == "/v3/redirect" {
			w.Header().Set("Location", "/v3/items")
			w.Header().Set("Link", `</v3/items?page=2>; rel="next"`)
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer api.Close()
	target, _ := url.Parse(api.URL + "/v3")
	p := &proxyHandler{secret: []byte("s"), target: target, base: "http://127.0.0.1:1", transport: http.DefaultTransport}
	h := p.handler()
	for _, path := range []string{"/../admin", "/%2e%2e/admin", "/items/..", "/./items", "/x/%2E%2E/%2e%2e/admin", `/..\admin`, "/..%2Fadmin"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = &url.URL{Path: mustUnescape(t, path), RawPath: path}
		r.RequestURI = path
		r.Header.Set("Authorization", "Bearer s")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", path, w.Code)
		}
	}
	if len(seen) != 0 {
		t.Fatalf("the API saw %v", seen)
	}
	r := httptest.NewRequest("GET", "/redirect", nil)
	r.Header.Set("Authorization", "Bearer s")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Location"); got != "http://127.0.0.1:1/items" {
		t.Errorf("Location = %q", got)
	}
	if got := w.Header().Get("Link"); got != `<http://127.0.0.1:1/items?page=2>; rel="next"` {
		t.Errorf("Link = %q", got)
	}
	io.Copy(io.Discard, w.Result().Body)
}

func mustUnescape(t *testing.T, p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(u, "%2F", "/")
}
