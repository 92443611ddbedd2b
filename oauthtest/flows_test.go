package oauthtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMetadata(t *testing.T) {
	s, _ := start(t, Options{})
	resp, err := http.Get(s.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md authServerMetadata
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"issuer", md.Issuer, s.URL},
		{"authorization_endpoint", md.AuthorizationEndpoint, s.URL + "/authorize"},
		{"token_endpoint", md.TokenEndpoint, s.URL + "/oauth/token"},
		{"device_authorization_endpoint", md.DeviceAuthorizationEndpoint, s.URL + "/device_authorization"},
		{"revocation_endpoint", md.RevocationEndpoint, s.URL + "/revoke"},
		{"code_challenge_methods_supported", strings.Join(md.CodeChallengeMethodsSupported, " "), "S256"},
		{"grant_types_supported", strings.Join(md.GrantTypesSupported, " "),
			"authorization_code refresh_token urn:ietf:params:oauth:grant-type:device_code client_credentials urn:ietf:params:oauth:grant-type:token-exchange"},
		{"token_endpoint_auth_methods_supported", strings.Join(md.TokenEndpointAuthMethodsSupported, " "), "none private_key_jwt"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}

	resp2, err := http.Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var oidcMD struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp2.Body).Decode(&oidcMD); err != nil {
		t.Fatal(err)
	}
	if oidcMD.Issuer != s.URL || oidcMD.TokenEndpoint != md.TokenEndpoint {
		t.Errorf("openid-configuration: got issuer %q token %q, want %q %q", oidcMD.Issuer, oidcMD.TokenEndpoint, s.URL, md.TokenEndpoint)
	}
}

func TestCodeFlowPKCE(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})

	t.Run("success", func(t *testing.T) {
		a := login(t, s)
		if a.TokenType != "Bearer" || a.ExpiresIn != 3600 {
			t.Errorf("got token_type %q expires_in %d, want Bearer 3600", a.TokenType, a.ExpiresIn)
		}
		if !strings.HasPrefix(a.RefreshToken, refreshPrefix) {
			t.Errorf("refresh token: got prefix %q, want %q", a.RefreshToken[:4], refreshPrefix)
		}
		if !slices.Contains(strings.Fields(a.Scope), "offline_access") {
			t.Errorf("scope: got %q, want offline_access granted", a.Scope)
		}
		status, _, body := get(t, s, "/v2/user", a.AccessToken)
		var u User
		if status != http.StatusOK || json.Unmarshal(body, &u) != nil || u.Login != "dev" {
			t.Fatalf("GET /v2/user: got %d %s, want 200 login dev", status, body)
		}
	})

	t.Run("plain OAuth scope", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, url.Values{"scope": {"repo read:user"}})
		a := exchange(t, s, testClient, code, redirect, p.verifier)
		wantTokens(t, a)
		if got := strings.Fields(a.Scope); !slices.Contains(got, "repo") || !slices.Contains(got, "offline_access") {
			t.Errorf("scope: got %q, want repo and offline_access", a.Scope)
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, nil)
		wantError(t, exchange(t, s, testClient, code, redirect, newPKCE().verifier), 400, "invalid_grant")
	})

	t.Run("missing verifier", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, nil)
		wantError(t, exchange(t, s, testClient, code, redirect, ""), 400, "invalid_request")
	})

	t.Run("replayed code revokes its tokens", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, nil)
		first := exchange(t, s, testClient, code, redirect, p.verifier)
		wantTokens(t, first)
		wantError(t, exchange(t, s, testClient, code, redirect, p.verifier), 400, "invalid_grant")
		wantResource(t, s, first.AccessToken, http.StatusUnauthorized)
		wantError(t, refresh(t, s, first.RefreshToken), 400, "invalid_grant")
	})

	t.Run("other client cannot redeem", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, nil)
		wantError(t, exchange(t, s, "someone-else", code, redirect, p.verifier), 400, "invalid_grant")
	})

	t.Run("redirect_uri must match", func(t *testing.T) {
		p := newPKCE()
		code, redirect := authorize(t, s, testClient, p, nil)
		wantError(t, exchange(t, s, testClient, code, redirect+"x", p.verifier), 400, "invalid_grant")
	})
}

// noFollow is a client that shows the first redirect instead of following it.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestAuthorizeRejects(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	p := newPKCE()
	const cb = "http://127.0.0.1:9/cb"
	tests := []struct {
		name      string
		url       string
		wantError string // in the redirect; "" means no redirect, a 400 page
	}{
		{"no PKCE", s.URL + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {cb}, "state": {"x"}}.Encode(), "invalid_request"},
		{"plain PKCE", s.URL + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {cb}, "code_challenge": {p.verifier}, "code_challenge_method": {"plain"}}.Encode(), "invalid_request"},
		{"implicit", authorizeURL(s, "c", cb, "x", p, url.Values{"response_type": {"token"}}), "unauthorized_client"},
		{"non-loopback redirect", authorizeURL(s, "c", "http://example.com/cb", "x", p, nil), ""},
		{"https loopback lookalike", authorizeURL(s, "c", "http://127.0.0.1:80@example.com/cb", "x", p, nil), ""},
		{"no client_id", authorizeURL(s, "", cb, "x", p, nil), ""},
		{"no redirect_uri", authorizeURL(s, "c", "", "x", p, nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := noFollow.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tt.wantError == "" {
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("got %d Location %q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), cb) {
				t.Fatalf("got %d Location %q, want 302 to %s", resp.StatusCode, loc, cb)
			}
			if got := loc.Query().Get("error"); got != tt.wantError {
				t.Fatalf("error: got %q, want %q", got, tt.wantError)
			}
		})
	}

	for _, redirect := range []string{"http://[::1]:53682/oauth/callback", "http://127.0.0.1:1/", "http://127.0.0.1/cb?x=1", "http://localhost:8085/cb"} {
		t.Run("accepts "+redirect, func(t *testing.T) {
			resp, err := noFollow.Get(authorizeURL(s, "c", redirect, "x", p, nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/login?") {
				t.Fatalf("got %d Location %q, want 302 to /login", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestRestrictedClients(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true, Clients: []string{testClient}})
	login(t, s)
	p := newPKCE()
	resp, err := noFollow.Get(authorizeURL(s, "stranger", "http://127.0.0.1:9/cb", "x", p, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("authorize with unknown client: got %d, want 400", resp.StatusCode)
	}
	a := postForm(t, s.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"stranger"}})
	wantError(t, a, http.StatusUnauthorized, "invalid_client")
}

func TestApprovePage(t *testing.T) {
	s, _ := start(t, Options{})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	cb := newCallback(t)
	p := newPKCE()

	resp, err := browser.Get(authorizeURL(s, testClient, cb.URL+"/cb", "st", p, nil))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" || !strings.Contains(string(page), `value="deny"`) {
		t.Fatalf("got %d at %s, want the approve page", resp.StatusCode, resp.Request.URL.Path)
	}

	t.Run("deny", func(t *testing.T) {
		resp, err := browser.PostForm(resp.Request.URL.String(), url.Values{"action": {"deny"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		q := cb.query()
		if q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Get("code") != "" {
			t.Fatalf("callback got %v, want error=access_denied state=st", q)
		}
		if got := s.Counters().Denials; got != 1 {
			t.Errorf("denials: got %d, want 1", got)
		}
	})

	t.Run("approve", func(t *testing.T) {
		code, redirect := authorize(t, s, testClient, p, nil) // Browser clicks Approve
		wantTokens(t, exchange(t, s, testClient, code, redirect, p.verifier))
	})
}

func TestRefreshRotation(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true, AccessTTL: 2 * time.Second})
	a := login(t, s)
	if a.ExpiresIn != 2 {
		t.Errorf("expires_in: got %d, want 2", a.ExpiresIn)
	}
	b := refresh(t, s, a.RefreshToken)
	wantTokens(t, b)
	if b.RefreshToken == a.RefreshToken || b.AccessToken == a.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if b.ExpiresIn != 2 {
		t.Errorf("expires_in after refresh: got %d, want 2", b.ExpiresIn)
	}
	wantResource(t, s, b.AccessToken, http.StatusOK)
	c := refresh(t, s, b.RefreshToken)
	wantTokens(t, c)
	if got := s.Counters().RefreshSuccesses; got != 2 {
		t.Errorf("refresh_successes: got %d, want 2", got)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	other := login(t, s) // an unrelated login must survive
	a := login(t, s)
	b := refresh(t, s, a.RefreshToken)
	wantTokens(t, b)
	c := refresh(t, s, b.RefreshToken)
	wantTokens(t, c)

	wantError(t, refresh(t, s, a.RefreshToken), 400, "invalid_grant") // reuse
	wantResource(t, s, c.AccessToken, http.StatusUnauthorized)        // the newest access token
	wantResource(t, s, b.AccessToken, http.StatusUnauthorized)
	wantError(t, refresh(t, s, c.RefreshToken), 400, "invalid_grant") // the newest refresh token

	wantResource(t, s, other.AccessToken, http.StatusOK)
	wantTokens(t, refresh(t, s, other.RefreshToken))

	got := s.Counters()
	if got.ReuseDetections != 1 || got.FamiliesRevoked != 1 || got.InvalidGrants != 2 {
		t.Errorf("counters: got reuse %d families %d invalid_grants %d, want 1 1 2", got.ReuseDetections, got.FamiliesRevoked, got.InvalidGrants)
	}
}

func TestRefreshExpiry(t *testing.T) {
	s, clk := start(t, Options{AutoApprove: true, RefreshTTL: time.Hour})
	a := login(t, s)
	clk.advance(time.Hour + time.Second)
	wantError(t, refresh(t, s, a.RefreshToken), 400, "invalid_grant")
}

func TestExpiry(t *testing.T) {
	s, clk := start(t, Options{AutoApprove: true, AccessTTL: time.Second})
	a := login(t, s)
	if a.ExpiresIn != 1 {
		t.Errorf("expires_in: got %d, want 1", a.ExpiresIn)
	}
	wantResource(t, s, a.AccessToken, http.StatusOK)
	clk.advance(2 * time.Second)
	wantResource(t, s, a.AccessToken, http.StatusUnauthorized)

	b := refresh(t, s, a.RefreshToken)
	wantTokens(t, b)
	wantResource(t, s, b.AccessToken, http.StatusOK)

	t.Run("ExpireAccessTokens", func(t *testing.T) {
		c := refresh(t, s, b.RefreshToken)
		wantTokens(t, c)
		s.ExpireAccessTokens()
		wantResource(t, s, c.AccessToken, http.StatusUnauthorized)
		wantTokens(t, refresh(t, s, c.RefreshToken)) // refresh tokens still work
	})

	t.Run("POST /_dev/expire", func(t *testing.T) {
		d := login(t, s)
		resp, err := http.Post(s.URL+"/_dev/expire", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantResource(t, s, d.AccessToken, http.StatusUnauthorized)
	})

	t.Run("missing and garbage tokens", func(t *testing.T) {
		for _, tok := range []string{"", "garbage", "Zm9vOmJhcg", a.RefreshToken} {
			wantResource(t, s, tok, http.StatusUnauthorized)
		}
	})
}

func TestRevocation(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	revoke := func(token, hint, clientID string) tokenAnswer {
		return postForm(t, s.URL+"/revoke", url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {clientID}})
	}

	t.Run("refresh token revokes the family", func(t *testing.T) {
		a := login(t, s)
		b := refresh(t, s, a.RefreshToken)
		if got := revoke(b.RefreshToken, "refresh_token", testClient); got.Status != http.StatusOK {
			t.Fatalf("revoke: got %d %s", got.Status, got.Error)
		}
		wantResource(t, s, b.AccessToken, http.StatusUnauthorized)
		wantError(t, refresh(t, s, b.RefreshToken), 400, "invalid_grant")
	})

	t.Run("access token only", func(t *testing.T) {
		a := login(t, s)
		if got := revoke(a.AccessToken, "access_token", testClient); got.Status != http.StatusOK {
			t.Fatalf("revoke: got %d %s", got.Status, got.Error)
		}
		wantResource(t, s, a.AccessToken, http.StatusUnauthorized)
		wantTokens(t, refresh(t, s, a.RefreshToken))
	})

	t.Run("unknown token is fine", func(t *testing.T) {
		if got := revoke("nonsense", "", testClient); got.Status != http.StatusOK {
			t.Fatalf("revoke unknown: got %d %s, want 200 (RFC 7009 §2.2)", got.Status, got.Error)
		}
	})

	t.Run("other client", func(t *testing.T) {
		a := login(t, s)
		wantError(t, revoke(a.RefreshToken, "refresh_token", "someone-else"), http.StatusUnauthorized, "invalid_client")
		wantTokens(t, refresh(t, s, a.RefreshToken))
	})

	t.Run("no client_id", func(t *testing.T) {
		wantError(t, revoke("x", "", ""), http.StatusUnauthorized, "invalid_client")
	})

	t.Run("RevokeFamily and /_dev/revoke", func(t *testing.T) {
		a := login(t, s)
		b := refresh(t, s, a.RefreshToken)
		s.RevokeFamily(a.RefreshToken) // a rotated token names the family too
		wantResource(t, s, b.AccessToken, http.StatusUnauthorized)

		c := login(t, s)
		got := postForm(t, s.URL+"/_dev/revoke", url.Values{"refresh_token": {c.RefreshToken}})
		if got.Status != http.StatusOK {
			t.Fatalf("/_dev/revoke: got %d", got.Status)
		}
		wantError(t, refresh(t, s, c.RefreshToken), 400, "invalid_grant")
		if got := postForm(t, s.URL+"/_dev/revoke", url.Values{"refresh_token": {c.RefreshToken}}); got.Status != http.StatusNotFound {
			t.Fatalf("/_dev/revoke again: got %d, want 404", got.Status)
		}
	})

	if got := s.Counters().Revocations; got != 2 {
		t.Errorf("revocations: got %d, want 2", got)
	}
}

// TestRefreshIdle: with a sliding idle window, each answer says how long
// its refresh token has left, a token used within the window rotates into
// a fresh window, and one left unused past it is refused.
func TestRefreshIdle(t *testing.T) {
	s, clk := start(t, Options{AutoApprove: true, RefreshIdle: time.Minute})
	a := login(t, s)
	if got := refreshExpiresIn(t, s, a); got != 60 && got != 59 {
		t.Fatalf("refresh_token_expires_in after login: got %d, want 59 or 60", got)
	}
	rt := a.RefreshToken
	for i := range 5 { // five windows, each used before it lapses
		clk.advance(50 * time.Second)
		b := refresh(t, s, rt)
		wantTokens(t, b)
		if i == 0 {
			if got := refreshExpiresIn(t, s, b); got != 60 && got != 59 {
				t.Fatalf("refresh_token_expires_in after a rotation: got %d, want 59 or 60", got)
			}
		}
		rt = b.RefreshToken
	}
	clk.advance(61 * time.Second)
	wantError(t, refresh(t, s, rt), 400, "invalid_grant")

	plain, _ := start(t, Options{AutoApprove: true})
	if a := login(t, plain); a.RefreshExpiresIn != nil {
		t.Errorf("without RefreshIdle: got refresh_token_expires_in %d, want none", *a.RefreshExpiresIn)
	}
}

// refreshExpiresIn returns a's refresh_token_expires_in, failing when the
// answer has none.
func refreshExpiresIn(t *testing.T, s *Server, a tokenAnswer) int {
	t.Helper()
	if a.RefreshExpiresIn == nil {
		t.Fatal("the answer has no refresh_token_expires_in")
	}
	return *a.RefreshExpiresIn
}
