// Package identity tells who a login is for: from an OpenID Connect
// id_token verified against the issuer's keys (OIDC Core §3.1.3.7), or
// from the userinfo endpoint (OIDC Core §5.3). It also checks that a
// token a person pasted is accepted by the server.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchdev/latch/internal/hostile"
	"github.com/latchdev/latch/internal/redact"
)

// MaxBody bounds what is read of a JWKS or userinfo answer.
const MaxBody = 1 << 20

// DefaultTimeout bounds each call.
const DefaultTimeout = 15 * time.Second

// Leeway is the clock skew allowed when checking exp and iat.
const Leeway = 2 * time.Minute

// Claims is the part of an id_token or userinfo answer latch shows.
type Claims struct {
	Subject           string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	Name              string `json:"name"`
	Login             string `json:"login"` // GitHub's /user
}

// Display returns the most telling name in c, safe for a terminal:
// preferred_username, login, email, name, then the subject.
func (c *Claims) Display() string {
	for _, s := range []string{c.PreferredUsername, c.Login, c.Email, c.Name, c.Subject} {
		// The server chose it: a name that is not fit to show is skipped.
		if s = hostile.Name(s); s != "" {
			return s
		}
	}
	return ""
}

// algorithms are the JWS algorithms accepted for an id_token (RFC 7518
// §3.1); "none" and the HMAC ones, which would need the client secret as
// key, are not among them.
var algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// idClaims are the id_token claims checked by VerifyIDToken.
type idClaims struct {
	Claims
	Issuer   string          `json:"iss"`
	Audience json.RawMessage `json:"aud"`
	AZP      string          `json:"azp"`
	TenantID string          `json:"tid"` // Entra ID
	Expiry   *json.Number    `json:"exp"`
}

// VerifyIDToken checks raw's signature with a key from jwksURL and its
// iss, aud, azp and exp claims (OIDC Core §3.1.3.7), and returns its
// claims. An id_token that fails any check is never trusted. An issuer
// holding {tenantid} is Entra ID's multi-tenant template
// (discovery.TenantTemplate): iss must be it with the token's tid.
func VerifyIDToken(ctx context.Context, hc *http.Client, raw, issuer, clientID, jwksURL string, now time.Time) (*Claims, error) {
	if jwksURL == "" {
		return nil, errors.New("id_token: the server publishes no jwks_uri to verify it with")
	}
	jws, err := jose.ParseSignedCompact(raw, algorithms)
	if err != nil {
		return nil, errors.New("id_token: not a JWS signed with an accepted algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("id_token: want exactly one signature")
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, hc, jwksURL, "", &set); err != nil {
		return nil, fmt.Errorf("id_token keys: %w", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	var payload []byte
	for _, k := range set.Keys {
		if kid != "" && k.KeyID != kid || k.Use != "" && k.Use != "sig" {
			continue
		}
		if p, err := jws.Verify(k); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, fmt.Errorf("id_token: no key at %s verifies its signature", jwksURL)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("id_token: claims are not a JSON object")
	}
	if strings.Contains(issuer, tenantPlaceholder) {
		// Entra ID's multi-tenant template: iss is the template with the
		// token's own tid, a GUID, in place of {tenantid}; nothing else.
		if !isGUID(c.TenantID) {
			return nil, fmt.Errorf("id_token: tid %q is not a tenant ID, so iss cannot be checked against %q", redact.Control(c.TenantID), issuer)
		}
		issuer = strings.Replace(issuer, tenantPlaceholder, c.TenantID, 1)
	}
	if strings.TrimSuffix(c.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return nil, fmt.Errorf("id_token: iss %q is not the issuer %q", redact.Control(c.Issuer), issuer)
	}
	var aud []string
	if json.Unmarshal(c.Audience, &aud) != nil {
		var one string
		if json.Unmarshal(c.Audience, &one) != nil {
			return nil, errors.New("id_token: aud is neither a string nor an array")
		}
		aud = []string{one}
	}
	if !slices.Contains(aud, clientID) {
		return nil, fmt.Errorf("id_token: aud does not name the client %q", clientID)
	}
	if len(aud) > 1 && c.AZP != "" && c.AZP != clientID {
		return nil, fmt.Errorf("id_token: azp is not the client %q", clientID)
	}
	if c.Expiry == nil {
		return nil, errors.New("id_token: no exp")
	}
	exp, err := c.Expiry.Float64()
	if err != nil || now.After(time.Unix(int64(exp), 0).Add(Leeway)) {
		return nil, errors.New("id_token: expired")
	}
	if c.Subject == "" {
		return nil, errors.New("id_token: no sub")
	}
	return &c.Claims, nil
}

// tenantPlaceholder is discovery.TenantPlaceholder (not imported: a leaf
// package).
const tenantPlaceholder = "{tenantid}"

// isGUID reports whether s is a GUID in its 8-4-4-4-12 hex form, as
// Entra ID's tid claim is.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f', 'A' <= r && r <= 'F':
		default:
			return false
		}
	}
	return true
}

// RejectedError is a token the server refused: 401 or 403 from the URL
// it was checked at.
type RejectedError struct {
	URL        string
	StatusCode int
	// Reason is the error of the answer's WWW-Authenticate (RFC 6750
	// §3.1), when it gave one, redacted.
	Reason string
}

func (e *RejectedError) Error() string {
	s := fmt.Sprintf("the server rejected the token: HTTP %d from %s", e.StatusCode, e.URL)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Userinfo asks the userinfo endpoint who accessToken belongs to. A
// token the server refuses is a *RejectedError.
func Userinfo(ctx context.Context, hc *http.Client, url, accessToken string) (*Claims, error) {
	var c Claims
	if err := getJSON(ctx, hc, url, accessToken, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Check sends accessToken to url and reports whether the server accepts
// it: any 2xx does, 401 and 403 are a *RejectedError, anything else is
// an error that says nothing of the token. When the answer is a JSON
// object, its claims (such as GitHub's login) are returned; else nil.
func Check(ctx context.Context, hc *http.Client, url, accessToken string) (*Claims, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	resp, err := get(ctx, hc, url, accessToken)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	var c Claims
	if json.Unmarshal(b, &c) != nil {
		return nil, nil
	}
	return &c, nil
}

func get(ctx context.Context, hc *http.Client, url, accessToken string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return nil, &RejectedError{URL: url, StatusCode: resp.StatusCode, Reason: bearerError(resp.Header.Get("WWW-Authenticate"), accessToken)}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return resp, nil
}

func getJSON(ctx context.Context, hc *http.Client, url, accessToken string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	resp, err := get(ctx, hc, url, accessToken)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return fmt.Errorf("GET %s: answer is %q, not JSON", url, ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > MaxBody {
		return fmt.Errorf("GET %s: answer larger than 1 MiB", url)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: answer is not the JSON object expected", url)
	}
	return nil
}

// bearerError returns the error (and error_description) of a Bearer
// challenge (RFC 6750 §3), redacted for showing.
func bearerError(h, token string) string {
	scheme, params, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	var code, desc string
	for _, p := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "error":
			code = v
		case "error_description":
			desc = v
		}
	}
	if desc != "" {
		code += ": " + desc
	}
	return redact.Server(code, token)
}
