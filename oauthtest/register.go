package oauthtest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"
)

const (
	// resourcePath serves the API's protected resource metadata (RFC 9728 §3).
	resourcePath = "/.well-known/oauth-protected-resource"
	// registerPath is the dynamic client registration endpoint (RFC 7591 §3).
	registerPath = "/register"
)

// resourceMetadata serves RFC 9728 §2 metadata for the API at s.URL: this
// server is its authorization server.
func (s *Server) resourceMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 s.URL,
		"authorization_servers":    []string{s.URL},
		"scopes_supported":         []string{"openid", "offline_access"},
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "latch dev API",
	})
}

// register is RFC 7591 §3.1 for native public clients: loopback or https
// redirect URIs, token_endpoint_auth_method "none", and the grant types
// this server has.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientName              string   `json:"client_name"`
		RedirectURIs            []string `json:"redirect_uris"`
		GrantTypes              []string `json:"grant_types"`
		ResponseTypes           []string `json:"response_types"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
		Scope                   string   `json:"scope"`
	}
	fail := func(code, desc string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		fail("invalid_client_metadata", "the body is not a JSON object")
		return
	}
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2 default
	}
	if req.TokenEndpointAuthMethod != "none" {
		fail("invalid_client_metadata", "only public clients (token_endpoint_auth_method none) may register here")
		return
	}
	if len(req.RedirectURIs) == 0 {
		fail("invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, ru := range req.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || u.Fragment != "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Host+":0")) {
			fail("invalid_redirect_uri", "redirect URIs must be loopback http or https")
			return
		}
	}
	grants := req.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	for _, g := range grants {
		if !slices.Contains([]string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"}, g) {
			fail("invalid_client_metadata", "unsupported grant type")
			return
		}
	}
	id := "dyn-" + rand.Text()[:16]
	s.store.registered.Store(id, true)
	s.counters.add(func(c *Counters) { c.Registrations++ })
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id":                  id,
		"client_id_issued_at":        time.Now().Unix(),
		"client_name":                req.ClientName,
		"redirect_uris":              req.RedirectURIs,
		"grant_types":                grants,
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
}
