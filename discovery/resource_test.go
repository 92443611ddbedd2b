package discovery

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestResourceMetadataURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com":         "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/":        "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/v1/mcp":  "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp",
		"https://api.example.com/v1/?x=1": "https://api.example.com/.well-known/oauth-protected-resource/v1?x=1",
	} {
		got, err := ResourceMetadataURL(in)
		if err != nil || got != want {
			t.Errorf("ResourceMetadataURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ResourceMetadataURL("https://api.example.com/#frag"); err == nil {
		t.Error("a fragment was accepted")
	}
}

func TestResourceChallenge(t *testing.T) {
	for h, want := range map[string]string{
		`Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`:                                  "https://api.example.com/.well-known/oauth-protected-resource",
		`Bearer realm="x, y", error="invalid_token", resource_metadata="https://r.example/.well-known/oauth-protected-resource/a"`: "https://r.example/.well-known/oauth-protected-resource/a",
		`Bearer realm="resource_metadata=https://evil.example"`:                                                                    "",
		`Basic realm="api"`: "",
		``:                  "",
	} {
		if got := ResourceChallenge(h); got != want {
			t.Errorf("ResourceChallenge(%q) = %q, want %q", h, got, want)
		}
	}
}

func prmServer(t *testing.T, doc func(base string) map[string]any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, ResourcePath) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchResource(t *testing.T) {
	srv := prmServer(t, func(base string) map[string]any {
		return map[string]any{"resource": base + "/api", "authorization_servers": []string{"https://as.example"}}
	})
	m, err := FetchResource(t.Context(), nil, srv.URL+"/api")
	if err != nil || m.AuthorizationServers[0] != "https://as.example" {
		t.Fatalf("FetchResource: %+v, %v", m, err)
	}
	// From a challenge, for a URL under the resource: covered.
	if _, err := FetchResourceAt(t.Context(), nil, srv.URL+ResourcePath+"/api", srv.URL+"/api/items/1"); err != nil {
		t.Fatalf("FetchResourceAt under the resource: %v", err)
	}
	// Not a prefix at a path boundary: refused (RFC 9728 §7.3).
	_, err = FetchResourceAt(t.Context(), nil, srv.URL+ResourcePath+"/api", srv.URL+"/apix")
	var me *MetadataError
	if !errors.As(err, &me) || me.Field != "resource" {
		t.Fatalf("a resource that does not cover the URL: %v", err)
	}
}

func TestFetchResourceRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		doc   func(base string) map[string]any
		field string
	}{
		"another resource": {func(string) map[string]any {
			return map[string]any{"resource": "https://other.example", "authorization_servers": []string{"https://as.example"}}
		}, "resource"},
		"no servers": {func(base string) map[string]any { return map[string]any{"resource": base} }, "authorization_servers"},
		"http server": {func(base string) map[string]any {
			return map[string]any{"resource": base, "authorization_servers": []string{"http://as.example"}}
		}, "authorization_servers"},
		"no resource": {func(string) map[string]any {
			return map[string]any{"authorization_servers": []string{"https://as.example"}}
		}, "resource"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := prmServer(t, tc.doc)
			_, err := FetchResource(t.Context(), nil, srv.URL)
			var me *MetadataError
			if !errors.As(err, &me) || me.Field != tc.field {
				t.Fatalf("got %v, want a MetadataError for %s", err, tc.field)
			}
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := FetchResource(t.Context(), nil, srv.URL)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 {
		t.Fatalf("no metadata: %v", err)
	}
}
