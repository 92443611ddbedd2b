package oauthtest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Quirks make the server behave as a real provider does where it departs
// from the plain RFC 6749 path, so that each recipe of docs/providers.md
// runs end to end against it. The zero value is a plain server.
type Quirks struct {
	// NoDiscovery answers 404 at both well-known metadata paths (RFC
	// 8414 §3, OIDC Discovery §4), as GitHub, Atlassian and X do.
	NoDiscovery bool `json:"no_discovery,omitempty"`
	// FormAnswers answers the token endpoint form-encoded, as GitHub
	// does to a request without Accept: application/json; set
	// FormUnlessJSON to do so only then.
	FormAnswers    bool `json:"form_answers,omitempty"`
	FormUnlessJSON bool `json:"form_unless_json,omitempty"`
	// ErrorsAs200 answers token endpoint errors with status 200 and the
	// error in the body, as GitHub does.
	ErrorsAs200 bool `json:"errors_as_200,omitempty"`
	// ClientSecret, when set, is the secret every client must present at
	// the token, device and revocation endpoints (RFC 6749 §2.3.1), as
	// Google's "installed app" clients, Entra ID web apps and GitLab's
	// confidential applications need.
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientAuth is the one way the secret is accepted: "basic"
	// (client_secret_basic) or "post" (client_secret_post); "" accepts
	// either, never both at once (RFC 6749 §2.3).
	ClientAuth string `json:"client_auth,omitempty"`
	// RedirectURIs, when set, are the only redirect URIs accepted, by
	// exact string match, as Atlassian and X register them. Any other
	// gets an error page and no redirect, as those servers show.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// RedirectAnyLoopbackPort lets a registered loopback redirect URI
	// (127.0.0.1, [::1] or localhost) match on any port, the rest exact,
	// as RFC 8252 §7.3 asks and GitHub OAuth apps and Entra ID's
	// http://localhost do. Auth0, Okta, GitHub Apps and Atlassian match
	// the whole URI exactly: leave it false for them.
	RedirectAnyLoopbackPort bool `json:"redirect_any_loopback_port,omitempty"`
	// Audience, when set, must be sent as the audience parameter of the
	// authorization request (Auth0, Atlassian).
	Audience string `json:"audience,omitempty"`
	// RequireParams must all be sent with the authorization request, as
	// Google needs access_type=offline to issue a refresh token.
	RequireParams map[string]string `json:"require_params,omitempty"`
	// RefreshTokenExpiresIn adds refresh_token_expires_in (seconds) to
	// token answers that carry a refresh token, as GitHub App user tokens do.
	RefreshTokenExpiresIn int `json:"refresh_token_expires_in,omitempty"`
	// RenameErrors replaces RFC 6749 §5.2 error codes in token answers
	// with a provider's own, as GitHub answers bad_refresh_token for
	// invalid_grant.
	RenameErrors map[string]string `json:"rename_errors,omitempty"`
	// MultiTenant, "common" or "organizations", serves OIDC discovery at
	// /MultiTenant/v2.0 as Entra ID does: its issuer is the template
	// URL/{tenantid}/v2.0, and every id_token's iss is URL/TenantID/v2.0
	// with a tid claim of TenantID (DefaultTenantID when empty).
	MultiTenant string `json:"multi_tenant,omitempty"`
	TenantID    string `json:"tenant_id,omitempty"`
	// RefreshTokenOnlyWith: a code grant yields a refresh token only when
	// the authorization request carried all these parameters; otherwise
	// the answer simply has none, no error, as Google does without
	// access_type=offline.
	RefreshTokenOnlyWith map[string]string `json:"refresh_token_only_with,omitempty"`
	// RevokeGrant makes revoking a refresh token (RFC 7009) revoke the
	// whole grant: every family of the same user and client, as Google
	// does.
	RevokeGrant bool `json:"revoke_grant,omitempty"`
	// RevokeAccessOnRefresh revokes the access tokens issued before a
	// refresh as it rotates, as GitLab does.
	RevokeAccessOnRefresh bool `json:"revoke_access_on_refresh,omitempty"`
	// ReuseKeepsFamily answers a rotated-out refresh token with
	// invalid_grant and revokes nothing, as GitLab does in practice
	// (its documentation says the family is revoked).
	ReuseKeepsFamily bool `json:"reuse_keeps_family,omitempty"`
	// CloudResources serves Atlassian's shape of API: GET
	// /oauth/token/accessible-resources lists the sites the token may
	// reach, each with its cloud id (AtlassianCloudID), and the API
	// lives under /ex/jira/{cloudid}/ (GET .../rest/api/3/myself); any
	// other cloud id is 404.
	CloudResources bool `json:"cloud_resources,omitempty"`
	// SlackAnswers shapes token answers as Slack's oauth.v2.access does:
	// always status 200 with "ok"; an error is {"ok":false,"error":...}
	// (invalid_grant named invalid_refresh_token); the code grant's user
	// token comes under authed_user with token_type "user", a refresh's at
	// the top level.
	SlackAnswers bool `json:"slack_answers,omitempty"`
	// ScopesField names the granted scope "scopes" in token answers, as
	// Bitbucket Cloud does (RFC 6749 §5.1 says "scope").
	ScopesField bool `json:"scopes_field,omitempty"`
	// IssuerPath, such as "/realms/dev", makes the issuer URL+IssuerPath,
	// as Keycloak's realms are: OIDC discovery is served at
	// IssuerPath/.well-known/openid-configuration and id_tokens carry it.
	IssuerPath string `json:"issuer_path,omitempty"`
	// SessionIdle, in seconds, bounds the refresh tokens of a login that
	// did not ask for offline_access to that much time unused, as
	// Keycloak's SSO Session Idle does (30 minutes by default); answers
	// then carry Keycloak's refresh_expires_in. offline_access gets the
	// full RefreshTTL.
	SessionIdle int `json:"session_idle,omitempty"`
	// RefreshMaxAge, in seconds, ends every refresh token of a login this
	// long after the login, however often it rotated, as Atlassian's 365
	// days do (Options.RefreshTTL is the time a token may go unused: 90
	// days there).
	RefreshMaxAge int `json:"refresh_max_age,omitempty"`
	// Iss is how the authorization response names the issuer (RFC 9207):
	// "" advertises authorization_response_iss_parameter_supported and
	// sends iss, as Keycloak does; "none" does neither, as GitHub, Google
	// and Entra ID (so do NoDiscovery and MultiTenant); "missing"
	// advertises it and omits it, as a mix-up attacker's response would.
	Iss string `json:"iss,omitempty"`
}

// sendsIss reports whether authorization responses carry iss.
func (q Quirks) sendsIss() bool {
	return q.Iss == "" && !q.NoDiscovery && q.MultiTenant == ""
}

// advertisesIss reports whether metadata says they do.
func (q Quirks) advertisesIss() bool {
	return q.sendsIss() || q.Iss == "missing"
}

// issuer is the issuer that id_tokens name under q.
func (s *Server) issuer(q Quirks) string {
	switch {
	case q.MultiTenant != "":
		return s.URL + "/" + q.tenantID() + "/v2.0"
	case q.IssuerPath != "":
		return s.URL + q.IssuerPath
	}
	return s.URL
}

// slackAnswer reshapes m as Slack's oauth.v2.access answers.
func slackAnswer(r *http.Request, m map[string]any) map[string]any {
	if code, ok := m["error"].(string); ok {
		if code == "invalid_grant" {
			code = "invalid_refresh_token"
		}
		return map[string]any{"ok": false, "error": code}
	}
	tok := map[string]any{"token_type": "user"}
	for _, k := range []string{"access_token", "refresh_token", "expires_in", "scope"} {
		if v, ok := m[k]; ok {
			tok[k] = v
		}
	}
	if r.PostForm.Get("grant_type") == "refresh_token" {
		tok["ok"] = true
		return tok
	}
	tok["id"] = "U0DEV"
	return map[string]any{"ok": true, "app_id": "A0DEV", "authed_user": tok, "team": map[string]any{"id": "T0DEV", "name": "dev"}}
}

// AtlassianCloudID is the cloud id of Quirks.CloudResources' one site.
const AtlassianCloudID = "11223344-a1b2-4c3d-8e9f-001122334455"

// cloudResources serves Quirks.CloudResources.
func (s *Server) cloudResources(next http.Handler) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /oauth/token/accessible-resources", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []map[string]any{{"id": AtlassianCloudID, "name": "dev",
			"url": "https://dev.atlassian.net", "scopes": []string{"read:jira-work", "read:jira-user"}}})
	})
	api.HandleFunc("GET /ex/jira/{cloud}/rest/api/3/myself", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("cloud") != AtlassianCloudID {
			writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"Site not found"}})
			return
		}
		at, _ := r.Context().Value(tokenKey{}).(accessToken)
		writeJSON(w, http.StatusOK, map[string]any{"accountId": "557058:dev", "displayName": displayName(at.subject)})
	})
	guarded := s.requireToken(api)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.quirks().CloudResources && (r.URL.Path == "/oauth/token/accessible-resources" || strings.HasPrefix(r.URL.Path, "/ex/")) {
			guarded.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DefaultTenantID is the tid of Quirks.MultiTenant's id_tokens.
const DefaultTenantID = "00000000-0de7-4000-8000-000000000001"

func (q Quirks) tenantID() string {
	if q.TenantID != "" {
		return q.TenantID
	}
	return DefaultTenantID
}

// tenantDiscovery serves Quirks.MultiTenant's metadata document.
func (s *Server) tenantDiscovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := s.quirks()
		if q.MultiTenant != "" && r.Method == http.MethodGet &&
			r.URL.Path == "/"+q.MultiTenant+"/v2.0/.well-known/openid-configuration" {
			md := s.metadataDoc()
			md.Issuer = s.URL + "/{tenantid}/v2.0"
			writeJSON(w, http.StatusOK, md)
			return
		}
		if q.IssuerPath != "" && r.Method == http.MethodGet && r.URL.Path == q.IssuerPath+"/.well-known/openid-configuration" {
			md := s.metadataDoc()
			md.Issuer = s.URL + q.IssuerPath
			writeJSON(w, http.StatusOK, md)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reissueIDToken re-signs the id_token of a token answer with the issuer
// of q: for MultiTenant the one of the signed-in user's tenant, with its
// tid, as Entra ID's multi-tenant endpoints issue it.
func (s *Server) reissueIDToken(q Quirks, m map[string]any) {
	raw, ok := m["id_token"].(string)
	if !ok {
		return
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return
	}
	b, err := jws.Verify(&s.store.key.PublicKey)
	if err != nil {
		return
	}
	var claims map[string]any
	if json.Unmarshal(b, &claims) != nil {
		return
	}
	claims["iss"] = s.issuer(q)
	if q.MultiTenant != "" {
		claims["tid"] = q.tenantID()
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.store.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.store.keyID))
	if err != nil {
		return
	}
	b, _ = json.Marshal(claims)
	if out, err := signer.Sign(b); err == nil {
		if c, err := out.CompactSerialize(); err == nil {
			m["id_token"] = c
		}
	}
}

// SetQuirks replaces the server's quirks; requests already under way
// finish with the old ones.
func (s *Server) SetQuirks(q Quirks) {
	s.quirksMu.Lock()
	s.opts.Quirks = q
	s.quirksMu.Unlock()
}

func (s *Server) quirks() Quirks {
	s.quirksMu.Lock()
	defer s.quirksMu.Unlock()
	return s.opts.Quirks
}

// authMethods is token_endpoint_auth_methods_supported for q (RFC 8414 §2).
func (q Quirks) authMethods() []string {
	switch {
	case q.ClientSecret == "":
		return []string{"none", "private_key_jwt"}
	case q.ClientAuth == "basic":
		return []string{"client_secret_basic", "private_key_jwt"}
	case q.ClientAuth == "post":
		return []string{"client_secret_post", "private_key_jwt"}
	}
	return []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
}

// noDiscovery hides both metadata documents when asked to.
func (s *Server) noDiscovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.quirks().NoDiscovery && strings.HasPrefix(r.URL.Path, "/.well-known/") {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientAuth checks a client assertion (private_key_jwt, see
// AddClientKey) and enforces Quirks.ClientSecret, then hands the request
// on as a public client's (client_id in the body, no secret), which is
// how the engine underneath knows every client; the context says which
// client authenticated (for the client credentials grant).
func (s *Server) clientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := s.quirks()
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "bad form"})
				return
			}
			if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
				id, ok := s.assertionAuth(w, r)
				if !ok {
					return
				}
				for _, k := range []string{"client_assertion", "client_assertion_type"} {
					r.PostForm.Del(k)
					r.Form.Del(k)
				}
				r.PostForm.Set("client_id", id)
				r.Form.Set("client_id", id)
				exchangeClient(r)
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), confidentialKey{}, id)))
				return
			}
		}
		if q.ClientSecret == "" {
			exchangeClient(r)
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "bad form"})
			return
		}
		user, pass, basic := r.BasicAuth()
		if basic {
			// RFC 6749 §2.3.1: the id and secret are form-encoded first.
			user, _ = url.QueryUnescape(user)
			pass, _ = url.QueryUnescape(pass)
		}
		post, inPost := r.PostForm["client_secret"]
		var secret, method string
		switch {
		case basic && inPost:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
				"error_description": "the client used more than one authentication method"})
			return
		case basic:
			secret, method = pass, "basic"
			if id := r.PostForm.Get("client_id"); id != "" && id != user {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "client_id mismatch"})
				return
			}
			r.PostForm.Set("client_id", user)
			r.Form.Set("client_id", user)
		case inPost:
			secret, method = post[0], "post"
		}
		if secret == "" || (q.ClientAuth != "" && q.ClientAuth != method) ||
			subtle.ConstantTimeCompare([]byte(secret), []byte(q.ClientSecret)) != 1 {
			s.counters.add(func(c *Counters) { c.ClientAuthFailures++ })
			w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client",
				"error_description": "client authentication failed"})
			return
		}
		r.Header.Del("Authorization")
		r.PostForm.Del("client_secret")
		r.Form.Del("client_secret")
		exchangeClient(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), confidentialKey{}, r.PostForm.Get("client_id"))))
	})
}

// exchangeClient hands a token exchange's client to the engine, which
// reads it from Basic only (with an empty secret: clients are public
// there), when the body names it.
func exchangeClient(r *http.Request) {
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
		return
	}
	r.SetBasicAuth(url.QueryEscape(r.PostForm.Get("client_id")), "")
}

// authorizeQuirks checks the exact redirect URI and the audience of an
// authorization request.
func (s *Server) authorizeQuirks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := s.quirks()
		if len(q.RedirectURIs) == 0 && q.Audience == "" && len(q.RequireParams) == 0 && len(q.RefreshTokenOnlyWith) == 0 && q.SessionIdle == 0 ||
			r.URL.Path != s.provider.AuthorizationEndpoint().Relative() {
			next.ServeHTTP(w, r) // the callback
			return
		}
		_ = r.ParseForm()
		ru := r.Form.Get("redirect_uri")
		if len(q.RedirectURIs) > 0 && !q.redirectAllowed(ru) {
			// The redirect URI is not trusted: never redirect to it.
			s.page(w, http.StatusBadRequest, pageData{Message: "The redirect_uri is not registered for this client."})
			return
		}
		missing := ""
		if q.Audience != "" && r.Form.Get("audience") != q.Audience {
			missing = "audience"
		}
		for k, v := range q.RequireParams {
			if r.Form.Get(k) != v {
				missing = k
			}
		}
		if q.SessionIdle > 0 && !slices.Contains(strings.Fields(r.Form.Get("scope")), "offline_access") {
			s.store.sessionBound.Store(r.Form.Get("code_challenge"), true)
		}
		for k, v := range q.RefreshTokenOnlyWith {
			if r.Form.Get(k) != v {
				// No error: this login just gets no refresh token.
				s.store.noOffline.Store(r.Form.Get("code_challenge"), true)
				break
			}
		}
		if missing != "" {
			u, err := url.Parse(ru)
			if err != nil {
				s.page(w, http.StatusBadRequest, pageData{Message: "Bad redirect URI."})
				return
			}
			v := u.Query()
			v.Set("error", "invalid_request")
			v.Set("error_description", missing+" is required")
			v.Set("state", r.Form.Get("state"))
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// redirectAllowed matches ru against the registered redirect URIs:
// exactly (RFC 6749 §3.1.2.3 simple string comparison), or, with
// RedirectAnyLoopbackPort, on any port of a loopback host (RFC 8252 §7.3).
func (q Quirks) redirectAllowed(ru string) bool {
	if slices.Contains(q.RedirectURIs, ru) {
		return true
	}
	if !q.RedirectAnyLoopbackPort {
		return false
	}
	u, err := url.Parse(ru)
	if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
		return false
	}
	for _, reg := range q.RedirectURIs {
		r, err := url.Parse(reg)
		if err == nil && r.Scheme == u.Scheme && r.Hostname() == u.Hostname() &&
			strings.TrimSuffix(r.EscapedPath(), "/") == strings.TrimSuffix(u.EscapedPath(), "/") && r.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

func loopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

func (q Quirks) rewritesAnswers() bool {
	return q.FormAnswers || q.FormUnlessJSON || q.ErrorsAs200 || q.RefreshTokenExpiresIn > 0 || len(q.RenameErrors) > 0 ||
		q.MultiTenant != "" || q.SlackAnswers || q.ScopesField || q.IssuerPath != "" || q.SessionIdle > 0
}

// rewriteAnswer applies the answer quirks to a recorded token answer.
func (s *Server) rewriteAnswer(q Quirks, r *http.Request, rec *httptest.ResponseRecorder) {
	var m map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		return
	}
	if q.MultiTenant != "" || q.IssuerPath != "" {
		s.reissueIDToken(q, m)
	}
	if rt, ok := m["refresh_token"].(string); ok && q.SessionIdle > 0 {
		if exp, bound := s.store.sessionExpiry(rt); bound {
			m["refresh_expires_in"] = int(time.Until(exp).Round(time.Second).Seconds())
		}
	}
	if sc, ok := m["scope"]; ok && q.ScopesField {
		delete(m, "scope")
		m["scopes"] = sc
	}
	if q.SlackAnswers {
		m = slackAnswer(r, m)
		rec.Code = http.StatusOK
	}
	if q.RefreshTokenExpiresIn > 0 && rec.Code == http.StatusOK && m["refresh_token"] != nil {
		m["refresh_token_expires_in"] = q.RefreshTokenExpiresIn
	}
	if code, ok := m["error"].(string); ok && q.RenameErrors[code] != "" {
		m["error"] = q.RenameErrors[code]
	}
	if q.ErrorsAs200 && m["error"] != nil {
		rec.Code = http.StatusOK
	}
	form := q.FormAnswers
	if q.FormUnlessJSON {
		form = !strings.Contains(r.Header.Get("Accept"), "application/json")
	}
	rec.Body.Reset()
	if !form {
		_ = json.NewEncoder(rec.Body).Encode(m)
		return
	}
	v := url.Values{}
	for k, x := range m {
		switch x := x.(type) {
		case string:
			v.Set(k, x)
		case float64:
			v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
		default:
			b, _ := json.Marshal(x)
			v.Set(k, string(b))
		}
	}
	rec.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	rec.Body.WriteString(v.Encode())
}
