// Package endpoint describes an OAuth 2.0 authorization server's
// endpoints as its metadata names them (RFC 8414 §2), and says which URLs
// latch may send a secret to (RFC 8252 §8.3). It has no HTTP client:
// package discovery fetches and checks the metadata, and the small
// credential helpers, which only read a stored login, link this alone.
package endpoint

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Metadata is the part of an authorization server's metadata (RFC 8414 §2)
// that latch uses.
type Metadata struct {
	// Issuer is the issuer asked for, which the document named (RFC
	// 8414 §3.3).
	Issuer string `json:"issuer"`
	// IssuerTemplate is set when the document named Entra ID's
	// multi-tenant template instead (see TenantTemplate): an id_token's
	// iss is then this with {tenantid} replaced by its tid claim.
	IssuerTemplate                string   `json:"issuer_template,omitempty"`
	AuthorizationEndpoint         string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint   string   `json:"device_authorization_endpoint,omitempty"` // RFC 8628 §4
	RevocationEndpoint            string   `json:"revocation_endpoint,omitempty"`           // RFC 7009
	UserinfoEndpoint              string   `json:"userinfo_endpoint,omitempty"`             // OIDC Core §5.3
	JWKSURI                       string   `json:"jwks_uri,omitempty"`                      // RFC 8414 §2, for id_token signatures
	RegistrationEndpoint          string   `json:"registration_endpoint,omitempty"`         // RFC 7591
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	GrantTypesSupported           []string `json:"grant_types_supported,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported: client_secret_basic,
	// client_secret_post, none, … (RFC 8414 §2).
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// IssParameterSupported: the server names itself in every
	// authorization response (RFC 9207 §3), so one without iss is refused.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// ClientIDMetadataDocumentSupported: the server accepts a client ID
	// that is the HTTPS URL of the client's metadata document, which it
	// fetches (draft-ietf-oauth-client-id-metadata-document §5).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// URLError says a URL may not be used as an endpoint: it is not an
// absolute https URL, or it is plain http on a host that is not loopback
// (RFC 8252 §8.3).
type URLError struct {
	URL    string
	Reason string
}

func (e *URLError) Error() string { return fmt.Sprintf("url %q: %s", e.URL, e.Reason) }

// CheckURL reports whether raw may be used as an endpoint: an absolute
// https URL, or http only when the host is a loopback address (127.0.0.0/8,
// ::1 or "localhost"), per RFC 8252 §8.3. The error is a *URLError.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{URL: raw, Reason: "not a valid URL"}
	}
	if u.Host == "" || u.Hostname() == "" {
		return &URLError{URL: raw, Reason: "not an absolute URL with a host"}
	}
	if u.User != nil {
		return &URLError{URL: redactUser(u), Reason: "must not carry user information"}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return &URLError{URL: raw, Reason: "http is allowed only on loopback addresses (RFC 8252 §8.3); use https"}
	}
	return &URLError{URL: raw, Reason: "scheme must be https"}
}

// IsLoopback reports whether host (without port) is "localhost" or a
// loopback IP address (127.0.0.0/8 or ::1).
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}

func redactUser(u *url.URL) string {
	c := *u
	c.User = url.User("redacted")
	return c.String()
}
