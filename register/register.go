// Package register registers an OAuth 2.0 client with an authorization
// server by dynamic client registration (RFC 7591), so that a command-line
// tool can log in knowing only the server (or a resource that names it).
package register

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch/internal/hostile"
	"github.com/latchdev/latch/internal/redact"
)

// DefaultTimeout bounds Register when hc has no Timeout.
const DefaultTimeout = 15 * time.Second

// Request is client metadata (RFC 7591 §2) for the registration request
// (§3.1). A native public client sends token_endpoint_auth_method "none".
type Request struct {
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	// ApplicationType is OpenID Connect Dynamic Registration's
	// application_type: "native" for a loopback redirect.
	ApplicationType string `json:"application_type,omitempty"`
}

// Client is the registration answer (RFC 7591 §3.2.1).
type Client struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at,omitempty"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// RegistrationAccessToken and RegistrationClientURI are RFC 7592's,
	// for managing the registration; the token is a secret.
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
}

// Error is a registration error answer (RFC 7591 §3.2.2), such as
// invalid_redirect_uri or invalid_client_metadata, redacted for showing.
type Error struct {
	StatusCode  int
	Code        string
	Description string
}

func (e *Error) Error() string {
	s := "client registration refused: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s + " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
}

// Register sends req to the registration endpoint and returns the new
// client. hc may be nil. The answer's errors never quote a secret.
func Register(ctx context.Context, hc *http.Client, endpoint string, req Request) (*Client, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	if hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("register client: %w", err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("register client at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("register client at %s: %w", endpoint, err)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &Error{StatusCode: resp.StatusCode, Code: oneLine(e.Error), Description: oneLine(e.Description)}
		}
		return nil, fmt.Errorf("register client at %s: HTTP %d (%s)", endpoint, resp.StatusCode, ct)
	}
	var c Client
	if json.Unmarshal(b, &c) != nil || c.ClientID == "" {
		return nil, fmt.Errorf("register client at %s: the answer has no client_id", endpoint)
	}
	// The client_id is stored, printed and sent on every request: the
	// server chose it, so it is checked (RFC 6749 §A.1).
	if err := hostile.VSCHAR("client_id", c.ClientID, hostile.MaxClientID); err != nil {
		return nil, fmt.Errorf("register client at %s: %w", endpoint, err)
	}
	return &c, nil
}

// oneLine makes server text fit to show on one line: redacted, escaped
// (redact.Server), and its line breaks folded into spaces, so it cannot
// forge a line of latch's own.
func oneLine(s string) string { return strings.Join(strings.Fields(redact.Server(s)), " ") }
