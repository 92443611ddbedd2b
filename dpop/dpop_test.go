package dpop

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// checkProof verifies proof with go-jose, an implementation of its own
// (RFC 7515 signature, the embedded public JWK and its RFC 7638
// thumbprint), and returns the claims.
func checkProof(t *testing.T, k *Key, proof string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("go-jose cannot parse the proof: %v", err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("%d signatures, want 1", len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "dpop+jwt" {
		t.Errorf("typ = %q, want dpop+jwt (RFC 9449 §4.2)", typ)
	}
	if h.Algorithm != "ES256" {
		t.Errorf("alg = %q, want ES256", h.Algorithm)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() {
		t.Fatalf("jwk = %+v, want a valid public key and nothing private", jwk)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(tp); got != k.Thumbprint() {
		t.Errorf("Thumbprint() = %s, go-jose computes %s", k.Thumbprint(), got)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		t.Fatalf("signature does not verify with the embedded key: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestProof(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	proof, err := k.Proof(Request{Method: "POST", URL: "https://as.example/token?x=secret#frag",
		AccessToken: "the-access-token", Nonce: "n-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := checkProof(t, k, proof)
	sum := sha256.Sum256([]byte("the-access-token"))
	want := map[string]any{"htm": "POST", "htu": "https://as.example/token", "iat": float64(now.Unix()),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]), "nonce": "n-1"}
	for name, v := range want {
		if c[name] != v {
			t.Errorf("%s = %v, want %v", name, c[name], v)
		}
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %q, want a random id", jti)
	}
	for _, secret := range []string{"the-access-token", "secret", "frag"} {
		if strings.Contains(string(mustDecode(t, proof)), secret) {
			t.Errorf("the proof carries %q", secret)
		}
	}

	// Without a token or a nonce, neither claim is sent; every jti differs.
	p2, err := k.Proof(Request{Method: "GET", URL: "https://api.example/v1/user"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c2 := checkProof(t, k, p2)
	if _, ok := c2["ath"]; ok {
		t.Error("ath without an access token")
	}
	if _, ok := c2["nonce"]; ok {
		t.Error("nonce without a server nonce")
	}
	if c2["jti"] == c["jti"] {
		t.Error("two proofs share a jti")
	}
}

func mustDecode(t *testing.T, proof string) []byte {
	t.Helper()
	var out []byte
	for _, part := range strings.Split(proof, ".")[:2] {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestProofRefusesBadRequests(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{
		{Method: "GET", URL: "/relative"},
		{Method: "GET", URL: "ftp://as.example/x"},
		{Method: "GET", URL: "mailto:someone@example.com"},
		{Method: "", URL: "https://as.example/token"},
		{Method: "GET\r\nX: y", URL: "https://as.example/token"},
		{Method: "GET", URL: "https://as.example/%zz?token=secret-value"},
	} {
		if _, err := k.Proof(r, time.Now()); err == nil {
			t.Errorf("Proof(%q %q) made a proof, want an error", r.Method, r.URL)
		} else if strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error quotes the URL: %v", err)
		}
	}
}

// A stored key signs proofs for the same thumbprint.
func TestKeyRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Thumbprint() != k.Thumbprint() {
		t.Fatal("a parsed key has another thumbprint")
	}
	p, err := k2.Proof(Request{Method: "GET", URL: "https://api.example/"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkProof(t, k, p)
	if _, err := ParseKey([]byte("not a key")); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Errorf("ParseKey(garbage) = %v, want an error that does not quote it", err)
	}
}

// BenchmarkProof is the per-request cost of signing (issue 28's goal: at
// most 50 µs over the bearer path).
//
//	go test -run '^$' -bench Proof -benchmem ./dpop/
func BenchmarkProof(b *testing.B) {
	k, err := NewKey()
	if err != nil {
		b.Fatal(err)
	}
	r := Request{Method: "GET", URL: "https://api.example/v1/user?page=2", AccessToken: "access-token-value"}
	for b.Loop() {
		if _, err := k.Proof(r, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzProof: for any method and URL, Proof refuses or makes a proof that
// verifies, whose htu has no query or fragment and whose error never
// quotes the URL.
func FuzzProof(f *testing.F) {
	k, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{{"GET", "https://a.example/x?q=1#f"}, {"POST", "http://127.0.0.1:8080/token"},
		{"GET", "https://u:p@a.example/"}, {"PUT", "HTTPS://A.EXAMPLE:443/%41?"}, {"GET", "//a.example/x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, method, u string) {
		p, err := k.Proof(Request{Method: method, URL: u, AccessToken: "at"}, time.Now())
		if err != nil {
			if len(u) > 8 && strings.Contains(err.Error(), u) {
				t.Errorf("error quotes the URL: %v", err)
			}
			return
		}
		c := checkProof(t, k, p)
		htu, _ := c["htu"].(string)
		if pu, err := url.Parse(htu); err != nil || pu.User != nil || strings.ContainsAny(htu, "?#") {
			t.Errorf("htu %q keeps a query, fragment or user info (%v)", htu, err)
		}
		if c["htm"] != method {
			t.Errorf("htm = %v, want %q", c["htm"], method)
		}
	})
}
