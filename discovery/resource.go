package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchdev/latch/internal/authparam"
)

// ResourcePath is the well-known path of protected resource metadata
// (RFC 9728 §3).
const ResourcePath = "/.well-known/oauth-protected-resource"

// ResourceMetadata is the part of a protected resource's metadata (RFC
// 9728 §2) that latch uses: which authorization servers issue tokens for it.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// ResourceMetadataURL returns where resource's metadata lives: the
// well-known path inserted between host and path (RFC 9728 §3.1), any
// terminating slash removed first.
func ResourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" {
		return "", &URLError{URL: resource, Reason: "not an absolute URL with a host"}
	}
	if u.Fragment != "" {
		return "", &URLError{URL: resource, Reason: "a resource identifier has no fragment (RFC 9728 §1.2)"}
	}
	m := u.Scheme + "://" + u.Host + ResourcePath + strings.TrimSuffix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		m += "?" + u.RawQuery
	}
	return m, nil
}

// FetchResource reads resource's metadata from its well-known URL (RFC
// 9728 §3) and checks it: its resource must be the one asked for (§3.3),
// and it must name at least one authorization server whose URL passes
// CheckURL. hc may be nil; redirects stay on the resource's host.
func FetchResource(ctx context.Context, hc *http.Client, resource string) (*ResourceMetadata, error) {
	u, err := ResourceMetadataURL(resource)
	if err != nil {
		return nil, fmt.Errorf("resource metadata: %w", err)
	}
	return FetchResourceAt(ctx, hc, u, resource)
}

// FetchResourceAt reads protected resource metadata from metadataURL, as
// named by a resource_metadata challenge (RFC 9728 §5.1), for resource:
// the document's resource must be resource or a prefix of it at a path
// boundary (the URL requested, §3.3 and §7.3).
func FetchResourceAt(ctx context.Context, hc *http.Client, metadataURL, resource string) (*ResourceMetadata, error) {
	if err := CheckURL(metadataURL); err != nil {
		return nil, fmt.Errorf("resource metadata: %w", err)
	}
	if err := CheckURL(resource); err != nil {
		return nil, fmt.Errorf("resource metadata: %w", err)
	}
	mu, _ := url.Parse(metadataURL)
	client, timeout := metadataClient(hc, mu.Host)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := getDocument(ctx, client, metadataURL)
	if err != nil {
		return nil, fmt.Errorf("resource metadata: %w", err)
	}
	var m ResourceMetadata
	if json.Unmarshal(body, &m) != nil {
		return nil, fmt.Errorf("resource metadata: %w", &StatusError{URL: metadataURL, StatusCode: http.StatusOK, Reason: "not a JSON object"})
	}
	if m.Resource == "" {
		return nil, &MetadataError{URL: metadataURL, Field: "resource", Reason: "missing"}
	}
	if !resourceCovers(m.Resource, resource) {
		// RFC 9728 §7.3: else one resource could send a client to an
		// authorization server of its choosing for another's tokens.
		return nil, &MetadataError{URL: metadataURL, Field: "resource",
			Reason: fmt.Sprintf("is %q, not %q (RFC 9728 §3.3)", m.Resource, resource)}
	}
	if len(m.AuthorizationServers) == 0 {
		return nil, &MetadataError{URL: metadataURL, Field: "authorization_servers", Reason: "missing"}
	}
	for _, as := range m.AuthorizationServers {
		if err := CheckURL(as); err != nil {
			return nil, &MetadataError{URL: metadataURL, Field: "authorization_servers", Reason: "is not allowed", Err: err}
		}
	}
	return &m, nil
}

// resourceCovers reports whether the metadata's resource identifier is
// the requested URL, or the same origin and a path prefix of it ending at
// a slash; one trailing slash is not a difference.
func resourceCovers(declared, requested string) bool {
	d, err1 := url.Parse(declared)
	r, err2 := url.Parse(requested)
	if err1 != nil || err2 != nil || !strings.EqualFold(d.Scheme, r.Scheme) || !strings.EqualFold(d.Host, r.Host) {
		return false
	}
	dp, rp := strings.TrimSuffix(d.Path, "/"), strings.TrimSuffix(r.Path, "/")
	return dp == rp || strings.HasPrefix(rp, dp+"/")
}

// ResourceOf returns the resource identifier whose metadata lives at
// metadataURL, the inverse of ResourceMetadataURL (RFC 9728 §3.1): the
// well-known path removed from between host and path. ok is false when
// metadataURL is not at the well-known path.
func ResourceOf(metadataURL string) (resource string, ok bool) {
	u, err := url.Parse(metadataURL)
	if err != nil || u.Host == "" {
		return "", false
	}
	rest, found := strings.CutPrefix(u.EscapedPath(), ResourcePath)
	if !found || (rest != "" && rest[0] != '/') {
		return "", false
	}
	r := u.Scheme + "://" + u.Host + rest
	if u.RawQuery != "" {
		r += "?" + u.RawQuery
	}
	return r, true
}

// ResourceChallenge returns the resource_metadata URL of a Bearer
// challenge in a WWW-Authenticate header (RFC 9728 §5.1), or "".
func ResourceChallenge(header string) string {
	for _, part := range authparam.Split(header) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if i := strings.LastIndexByte(k, ' '); i >= 0 {
			k = k[i+1:] // "Bearer resource_metadata"
		}
		if strings.EqualFold(k, "resource_metadata") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}
