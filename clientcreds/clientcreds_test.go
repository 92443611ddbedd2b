package clientcreds_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/clientcreds"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
)

func keys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"RS256": rk, "ES256": ek, "ES384": ek384, "EdDSA": edk}
}

func devConfig(t *testing.T, srv *oauthtest.Server, client string) *latch.Config {
	t.Helper()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return discovery.Config(m, client, nil)
}

// whoAmI is the dev server API's answer to GET /v2/user with tok.
func whoAmI(t *testing.T, srv *oauthtest.Server, tok *latch.Token) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v2/user", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u oauthtest.User
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v2/user: %d, %v", resp.StatusCode, err)
	}
	return u.Login
}

// TestPrivateKeyJWT: each key type authenticates the client credentials
// grant at the dev server (RFC 7523 §2.2); the token works at the API as
// the client, has no refresh token, and no secret is sent.
func TestPrivateKeyJWT(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	for alg, k := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			client := "svc-" + strings.ToLower(alg)
			srv.AddClientKey(client, k.Public())
			cfg := devConfig(t, srv, client)
			cfg.ClientSecret = "must-not-be-sent"
			tok, err := clientcreds.Token(t.Context(), cfg, &clientcreds.Key{Signer: k, ID: "k1"})
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.Refreshable() || tok.Expiry.IsZero() {
				t.Errorf("token: refreshable %t, expiry %v; want an access token only, with its expiry", tok.Refreshable(), tok.Expiry)
			}
			if who := whoAmI(t, srv, tok); who != client {
				t.Errorf("API says %q, want the client %q", who, client)
			}
		})
	}
	if c := srv.Counters(); c.ClientCredentialGrants != 4 || c.ClientAuthFailures != 0 {
		t.Errorf("counters: %d grants, %d auth failures; want 4, 0", c.ClientCredentialGrants, c.ClientAuthFailures)
	}
}

// TestClientSecret: the client credentials grant with a secret (RFC 6749
// §2.3.1), in the header and in the body; a public client is refused.
func TestClientSecret(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	srv.SetQuirks(oauthtest.Quirks{ClientSecret: "s3cret"})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := devConfig(t, srv, "svc")
		cfg.ClientSecret, cfg.Endpoint.AuthStyle = "s3cret", style
		tok, err := clientcreds.Token(t.Context(), cfg, nil)
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if who := whoAmI(t, srv, tok); who != "svc" {
			t.Errorf("API says %q, want svc", who)
		}
	}
	cfg := devConfig(t, srv, "svc")
	cfg.ClientSecret = "wrong"
	_, err := clientcreds.Token(t.Context(), cfg, nil)
	var te *latch.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_client" || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v; want invalid_client without the secret", err)
	}
}

// TestAssertionRefused: an unregistered client, another client's key, a
// replayed assertion and a public client each get invalid_client.
func TestAssertionRefused(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	ks := keys(t)
	srv.AddClientKey("svc", ks["ES256"].Public())
	cfg := devConfig(t, srv, "svc")
	expectInvalidClient := func(name string, err error) {
		t.Helper()
		var te *latch.TokenError
		if !errors.As(err, &te) || te.Code != "invalid_client" || !latch.IsTerminal(err) {
			t.Errorf("%s: %v; want a terminal invalid_client", name, err)
		}
	}
	_, err := clientcreds.Token(t.Context(), devConfig(t, srv, "nobody"), &clientcreds.Key{Signer: ks["ES256"]})
	expectInvalidClient("unregistered client", err)
	_, err = clientcreds.Token(t.Context(), cfg, &clientcreds.Key{Signer: ks["RS256"]})
	expectInvalidClient("another key", err)
	_, err = clientcreds.Token(t.Context(), devConfig(t, srv, "svc"), nil)
	expectInvalidClient("no authentication", err)
	_, err = clientcreds.Token(t.Context(), cfg, &clientcreds.Key{Signer: ks["ES256"], Audience: "https://elsewhere.example"})
	expectInvalidClient("another audience", err)

	// The same assertion twice: the second is a replay (RFC 7523 §3 item 7).
	k := &clientcreds.Key{Signer: ks["ES256"]}
	jwt, err := k.Assertion("svc", cfg.Endpoint.TokenURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 401} {
		resp, err := http.PostForm(cfg.Endpoint.TokenURL, map[string][]string{"grant_type": {"client_credentials"},
			"client_assertion_type": {clientcreds.AssertionType}, "client_assertion": {jwt}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("assertion use %d: %d %s, want %d", i+1, resp.StatusCode, b, want)
		}
	}
}

// TestAssertionShape: the JWT is what RFC 7523 §3 asks: iss = sub =
// client, aud, a jti, a short exp; the header names alg and kid.
func TestAssertionShape(t *testing.T) {
	k := &clientcreds.Key{Signer: keys(t)["ES256"], ID: "key-1"}
	now := time.Unix(1_800_000_000, 0)
	jwt, err := k.Assertion("svc", "https://as.example/token", now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var h map[string]string
	var c map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	_ = json.Unmarshal(hb, &h)
	_ = json.Unmarshal(cb, &c)
	if h["alg"] != "ES256" || h["kid"] != "key-1" || len(sig) != 64 {
		t.Errorf("header %v, signature %d bytes; want ES256, key-1, 64", h, len(sig))
	}
	if c["iss"] != "svc" || c["sub"] != "svc" || c["aud"] != "https://as.example/token" || c["jti"] == "" ||
		c["exp"].(float64)-c["iat"].(float64) != 120 {
		t.Errorf("claims %v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", k, k, k); strings.Contains(s, privHex(t, k.Signer)) || !strings.Contains(s, "ES256") {
		t.Errorf("Key prints as %q", s)
	}
}

func TestParseKey(t *testing.T) {
	ks := keys(t)
	encode := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	p8, _ := x509.MarshalPKCS8PrivateKey(ks["ES256"])
	ec, _ := x509.MarshalECPrivateKey(ks["ES256"].(*ecdsa.PrivateKey))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := map[string][]byte{
		"PKCS #8":                 encode("PRIVATE KEY", p8),
		"PKCS #1":                 encode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(ks["RS256"].(*rsa.PrivateKey))),
		"SEC 1":                   encode("EC PRIVATE KEY", ec),
		"with text":               append([]byte("comment line\n"), encode("PRIVATE KEY", p8)...),
		"openssl ecparam -genkey": append(encode("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), encode("EC PRIVATE KEY", ec)...),
	}
	for name, b := range good {
		if _, err := clientcreds.ParseKey(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string][]byte{
		"not PEM":       []byte("secret-material-not-pem"),
		"public key":    encode("PUBLIC KEY", []byte("x")),
		"garbage DER":   encode("PRIVATE KEY", []byte("secret-material")),
		"encrypted":     encode("ENCRYPTED PRIVATE KEY", []byte("x")),
		"small RSA key": encode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)),
	}
	for name, b := range bad {
		_, err := clientcreds.ParseKey(b)
		if err == nil || strings.Contains(err.Error(), "secret-material") {
			t.Errorf("%s: %v; want an error that quotes nothing", name, err)
		}
	}
}

func privHex(t *testing.T, s crypto.Signer) string {
	b, err := s.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// FuzzParseKey: whatever a key file holds, ParseKey does not panic and
// its error never quotes the file.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("secret-material"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := clientcreds.ParseKey(b)
		if err != nil && len(b) >= 8 && strings.Contains(err.Error(), string(b)) {
			t.Errorf("the error quotes the input: %v", err)
		}
	})
}
