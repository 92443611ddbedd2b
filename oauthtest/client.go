package oauthtest

import (
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginPath is where zitadel sends the browser to log in and approve.
const loginPath = "/login"

// publicClient is a native public client (RFC 6749 §2.1, RFC 8252): no
// secret, PKCE required, any loopback redirect URI on any port and path
// (RFC 8252 §7.3), localhost tolerated (RFC 8252 §8.3).
type publicClient struct{ id string }

func (c publicClient) GetID() string { return c.id }

// RedirectURIs lists loopback URIs without a port; RedirectURIGlobs admits
// any port and path.
func (c publicClient) RedirectURIs() []string {
	return []string{"http://127.0.0.1/", "http://[::1]/"}
}

func (c publicClient) RedirectURIGlobs() []string {
	return []string{
		"http://127.0.0.1/**", "http://127.0.0.1:*/**",
		`http://\[::1\]/**`, `http://\[::1\]:*/**`,
		"http://localhost/**", "http://localhost:*/**", // RFC 8252 §8.3: not recommended, tolerated
	}
}

func (c publicClient) PostLogoutRedirectURIs() []string     { return nil }
func (c publicClient) PostLogoutRedirectURIGlobs() []string { return nil }
func (c publicClient) ApplicationType() op.ApplicationType  { return op.ApplicationTypeNative }
func (c publicClient) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodNone }
func (c publicClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c publicClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}

func (c publicClient) LoginURL(id string) string {
	return loginPath + "?id=" + url.QueryEscape(id)
}

func (c publicClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c publicClient) IDTokenLifetime() time.Duration      { return time.Hour }
func (c publicClient) DevMode() bool                       { return false }
func (c publicClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c publicClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits any scope, so plain OAuth scopes such as "repo" pass.
func (c publicClient) IsScopeAllowed(string) bool           { return true }
func (c publicClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c publicClient) ClockSkew() time.Duration             { return 0 }

var _ op.HasRedirectGlobs = publicClient{}

// authRequest is a stored authorization request (RFC 6749 §4.1.1).
type authRequest struct {
	id           string
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	challenge    *oidc.CodeChallenge
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	created      time.Time

	sessionBound bool // Quirks.SessionIdle applies to its refresh tokens
	done         bool // the user approved
	subject      string
	authTime     time.Time
	code         string
	codeRedeemed bool   // a token request redeemed the code
	consumed     bool   // finished: redeemed or denied
	familyID     string // refresh family minted from the code
}

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	if a.challenge != nil {
		ch := *a.challenge
		c.challenge = &ch
	}
	return &c
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// refreshTokenRequest is the grant behind a refresh token (RFC 6749 §6).
type refreshTokenRequest struct {
	familyID string
	clientID string
	subject  string
	scopes   []string
	authTime time.Time
}

func (r *refreshTokenRequest) GetAMR() []string            { return []string{"pwd"} }
func (r *refreshTokenRequest) GetAudience() []string       { return []string{r.clientID} }
func (r *refreshTokenRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshTokenRequest) GetClientID() string         { return r.clientID }
func (r *refreshTokenRequest) GetScopes() []string         { return r.scopes }
func (r *refreshTokenRequest) GetSubject() string          { return r.subject }
func (r *refreshTokenRequest) SetCurrentScopes(s []string) { r.scopes = s }

var (
	_ op.AuthRequest         = (*authRequest)(nil)
	_ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)
)
