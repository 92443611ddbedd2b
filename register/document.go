package register

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchdev/latch/discovery"
)

// MaxDocument is the largest client metadata document FetchDocument
// reads (draft-ietf-oauth-client-id-metadata-document §4.1 suggests
// servers cap it at 5 KB).
const MaxDocument = 5 << 10

// Document is an OAuth Client ID Metadata Document
// (draft-ietf-oauth-client-id-metadata-document §4): the client's
// metadata (RFC 7591 §2), served at the HTTPS URL that is its client_id.
// A server that advertises client_id_metadata_document_supported fetches
// it instead of asking the client to register.
type Document struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// DocumentError says why a client ID URL or its document cannot be used.
type DocumentError struct {
	ClientID string
	Reason   string
	// StatusCode is the document host's status when it was not 200 (and
	// not a redirect): 429 or 5xx may pass.
	StatusCode int
}

func (e *DocumentError) Error() string {
	return "client ID metadata document " + e.ClientID + ": " + e.Reason
}

// CheckClientID checks that raw can be a client ID metadata document's
// URL (§3): https (http only on a loopback address, for development), a
// host, a path, no user information, fragment or dot segments.
func CheckClientID(raw string) error {
	u, err := url.Parse(raw)
	shown := raw
	if err == nil && u.User != nil {
		v := *u
		v.User = nil
		shown = v.String() // never the password
	}
	bad := func(reason string) error { return &DocumentError{ClientID: oneLine(shown), Reason: reason} }
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "":
		return bad("not an absolute URL with a host")
	case u.User != nil:
		return bad("must not carry user information")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment")
	case u.Scheme == "http" && !discovery.IsLoopback(u.Hostname()):
		return bad("must be https (http only on a loopback address)")
	case u.Scheme != "https" && u.Scheme != "http":
		return bad("must be https")
	case u.Path == "" || u.Path == "/":
		return bad("must have a path, such as /client.json")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return bad("must not have . or .. path segments")
		}
	}
	return nil
}

// FetchDocument fetches clientID's document as the server will and
// checks it, so that a login learns what is wrong before a browser shows
// the server's error page: 200 without a redirect, a JSON object of at
// most MaxDocument bytes, the same client_id, redirect URIs, and no
// secret (§4.1: a document cannot hold one). hc may be nil; its redirect
// policy is replaced.
func FetchDocument(ctx context.Context, hc *http.Client, clientID string) (*Document, error) {
	if err := CheckClientID(clientID); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return &DocumentError{ClientID: clientID, Reason: fmt.Sprintf(format, args...)}
	}
	c := http.Client{Timeout: DefaultTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if hc != nil {
		c.Transport = hc.Transport
		if hc.Timeout > 0 {
			c.Timeout = hc.Timeout
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, bad("%v", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("client ID metadata document %s: %w", clientID, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, bad("the URL redirects (HTTP %d); servers do not follow it: serve the document at the client ID itself", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, &DocumentError{ClientID: clientID, Reason: fmt.Sprintf("HTTP %d", resp.StatusCode), StatusCode: resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("client ID metadata document %s: %w", clientID, err)
	}
	if len(b) > MaxDocument {
		return nil, bad("larger than %d KiB", MaxDocument>>10)
	}
	var raw map[string]any
	var d Document
	if json.Unmarshal(b, &raw) != nil || json.Unmarshal(b, &d) != nil {
		return nil, bad("not a JSON object of client metadata")
	}
	switch {
	case d.ClientID != clientID:
		return nil, bad("it names another client_id (%s); it must be its own URL, exactly", oneLine(d.ClientID))
	case raw["client_secret"] != nil || strings.HasPrefix(d.TokenEndpointAuthMethod, "client_secret_"):
		return nil, bad("it holds a client secret or asks for one (%s); a document is public", oneLine(d.TokenEndpointAuthMethod))
	case len(d.RedirectURIs) == 0:
		return nil, bad("it lists no redirect_uris")
	}
	return &d, nil
}

// AllowsRedirect reports whether d lets a login come back to uri: one of
// its redirect_uris exactly, or a loopback one without a port, which
// admits any port (RFC 8252 §7.3).
func (d *Document) AllowsRedirect(uri string) bool {
	if slices.Contains(d.RedirectURIs, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	for _, r := range d.RedirectURIs {
		ru, err := url.Parse(r)
		if err == nil && ru.Port() == "" && discovery.IsLoopback(ru.Hostname()) && ru.Scheme == u.Scheme &&
			ru.Hostname() == u.Hostname() && ru.Path == u.Path && u.RawQuery == "" {
			return true
		}
	}
	return false
}
