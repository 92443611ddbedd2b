package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// issuerKeys serves a JWKS with one ES256 key and signs id_tokens with it.
type issuerKeys struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newIssuerKeys(t *testing.T) *issuerKeys {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &issuerKeys{key: key}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *issuerKeys) sign(t *testing.T, key any, alg jose.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", "k1")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyIDToken(t *testing.T) {
	k := newIssuerKeys(t)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "https://id.example", "aud": "cli", "sub": "u-1",
			"preferred_username": "ada", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx := context.Background()
	verify := func(raw string) (*Claims, error) {
		return VerifyIDToken(ctx, k.srv.Client(), raw, "https://id.example", "cli", k.srv.URL, now)
	}

	c, err := verify(k.sign(t, k.key, jose.ES256, good()))
	if err != nil || c.Display() != "ada" {
		t.Fatalf("good id_token: %v, %+v", err, c)
	}
	arr := good()
	arr["aud"], arr["azp"] = []string{"api", "cli"}, "cli"
	if _, err := verify(k.sign(t, k.key, jose.ES256, arr)); err != nil {
		t.Fatalf("aud array with azp: %v", err)
	}

	for _, tc := range []struct {
		name string
		raw  string
		want string
	}{
		{"other key", k.sign(t, other, jose.ES256, good()), "no key at"},
		{"HMAC with a guessable key", k.sign(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, good()), "accepted algorithm"},
		{"unsigned", unsigned(good()), "accepted algorithm"},
		{"wrong issuer", k.sign(t, k.key, jose.ES256, with(good(), "iss", "https://evil.example")), "is not the issuer"},
		{"wrong audience", k.sign(t, k.key, jose.ES256, with(good(), "aud", "someone-else")), "aud does not name"},
		{"wrong azp", k.sign(t, k.key, jose.ES256, with(with(good(), "aud", []string{"cli", "x"}), "azp", "x")), "azp"},
		{"expired", k.sign(t, k.key, jose.ES256, with(good(), "exp", now.Add(-time.Hour).Unix())), "expired"},
		{"no exp", k.sign(t, k.key, jose.ES256, with(good(), "exp", nil)), "no exp"},
		{"no sub", k.sign(t, k.key, jose.ES256, with(good(), "sub", nil)), "no sub"},
		{"garbage", "not.a.jwt", "accepted algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verify(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want an error containing %q", c, err, tc.want)
			}
		})
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	return m
}

// unsigned is an alg "none" JWT (RFC 7519 §6).
func unsigned(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "."
}

func TestUserinfoAndCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"sub":"u-1","email":"ada@example.com","name":"Ada\u001b[2J"}`))
		case "Bearer html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html>login</html>`))
		case "Bearer down":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="token bad-token-0123456789 was revoked"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := Userinfo(ctx, srv.Client(), srv.URL, "good")
	if err != nil || c.Display() != "ada@example.com" {
		t.Fatalf("Userinfo: %+v, %v", c, err)
	}
	if got := (&Claims{Name: "Ada\x1b[2J"}).Display(); strings.ContainsRune(got, 0x1b) {
		t.Fatalf("Display kept a terminal escape: %q", got)
	}
	if c, err := Check(ctx, srv.Client(), srv.URL, "good"); err != nil || c.Display() != "ada@example.com" {
		t.Fatalf("Check good: %+v, %v", c, err)
	}
	var re *RejectedError
	_, err = Check(ctx, srv.Client(), srv.URL, "bad-token-0123456789")
	if !errors.As(err, &re) || re.StatusCode != 401 || !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("Check bad: %v", err)
	}
	if strings.Contains(err.Error(), "bad-token-0123456789") {
		t.Fatalf("the token's value reached the error: %v", err)
	}
	if _, err := Userinfo(ctx, srv.Client(), srv.URL, "html"); err == nil || errors.As(err, &re) {
		t.Fatalf("HTML answer: %v", err)
	}
	if _, err := Check(ctx, srv.Client(), srv.URL, "down"); err == nil || errors.As(err, &re) {
		t.Fatalf("502 is not a rejection: %v", err)
	}
}

// TestVerifyIDTokenTenantTemplate: for Entra ID's multi-tenant issuer
// template, iss must be the template with the token's own tid, a GUID;
// any looser iss or tid is refused.
func TestVerifyIDTokenTenantTemplate(t *testing.T) {
	k := newIssuerKeys(t)
	now := time.Now()
	const (
		tmpl = "https://login.microsoftonline.com/{tenantid}/v2.0"
		tid  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	)
	claims := func(iss, tid string) map[string]any {
		m := map[string]any{"iss": iss, "aud": "cli", "sub": "u-1", "preferred_username": "ada",
			"exp": now.Add(time.Hour).Unix()}
		if tid != "" {
			m["tid"] = tid
		}
		return m
	}
	for _, tt := range []struct {
		name, iss, tid string
		ok             bool
	}{
		{"the template with its tid", "https://login.microsoftonline.com/" + tid + "/v2.0", tid, true},
		{"another tenant than tid", "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", tid, false},
		{"no tid", "https://login.microsoftonline.com/" + tid + "/v2.0", "", false},
		{"tid not a GUID", "https://login.microsoftonline.com/common/v2.0", "common", false},
		{"tid with a path", "https://login.microsoftonline.com/x/../y/v2.0", "x/../y", false},
		{"the template itself", tmpl, "", false},
		{"the multi-tenant issuer", "https://login.microsoftonline.com/common/v2.0", tid, false},
		{"another host", "https://login.evil.example/" + tid + "/v2.0", tid, false},
		{"v1 issuer", "https://sts.windows.net/" + tid + "/", tid, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := k.sign(t, k.key, jose.ES256, claims(tt.iss, tt.tid))
			_, err := VerifyIDToken(context.Background(), k.srv.Client(), raw, tmpl, "cli", k.srv.URL, now)
			if (err == nil) != tt.ok {
				t.Fatalf("iss %q tid %q: got %v, want ok=%v", tt.iss, tt.tid, err, tt.ok)
			}
		})
	}
}
