// Package dpop makes DPoP proofs (RFC 9449): a JWT, signed with a key
// that never leaves the client, that binds one HTTP request to that key.
// A token bound to the key is worth nothing without a fresh proof, so a
// refresh token that leaks alone cannot be redeemed.
//
// This package makes keys and proofs only; sending them (the DPoP
// header, the server's nonce) is the caller's.
package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Alg is the JWS algorithm of the proofs a Key signs (RFC 7518 §3.4):
// ECDSA on P-256 with SHA-256, the one every DPoP server supports.
const Alg = "ES256"

// Key is a client's DPoP proof key (RFC 9449 §4.2), an ECDSA P-256 key.
// It is safe for concurrent use.
type Key struct {
	priv       *ecdsa.PrivateKey
	header     string // the proofs' protected header, base64url
	thumbprint string
}

// NewKey makes a new proof key.
func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: make key: %w", err)
	}
	return newKey(priv)
}

// ParseKey reads a key that MarshalKey wrote (PKCS #8 DER). The error
// never quotes the input.
func ParseKey(der []byte) (*Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("dpop: key is not a PKCS #8 private key")
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("dpop: key is not an ECDSA P-256 key")
	}
	return newKey(priv)
}

// MarshalKey returns k's private key as PKCS #8 DER, for a store.
func MarshalKey(k *Key) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k.priv) }

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	pub, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil || len(pub) != 65 {
		return nil, errors.New("dpop: not a P-256 public key")
	}
	x := base64.RawURLEncoding.EncodeToString(pub[1:33])
	y := base64.RawURLEncoding.EncodeToString(pub[33:])
	// RFC 7638 §3.2: the required members only, in lexicographic order,
	// no white space.
	canon := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	sum := sha256.Sum256([]byte(canon))
	header := `{"typ":"dpop+jwt","alg":"` + Alg + `","jwk":` + canon + `}`
	return &Key{
		priv:       priv,
		header:     base64.RawURLEncoding.EncodeToString([]byte(header)),
		thumbprint: base64.RawURLEncoding.EncodeToString(sum[:]),
	}, nil
}

// Thumbprint is the JWK SHA-256 thumbprint of k's public key (RFC 7638),
// which a server binds tokens to (cnf.jkt, RFC 9449 §6) and an
// authorization request names (dpop_jkt, RFC 9449 §10).
func (k *Key) Thumbprint() string { return k.thumbprint }

// Request is what one proof binds (RFC 9449 §4.2).
type Request struct {
	Method string // htm: the HTTP method
	URL    string // htu: the target URI; its query and fragment are left out
	// AccessToken, when the request carries one, is bound by its hash
	// (ath, §4.2); the token itself never enters the proof.
	AccessToken string
	// Nonce is the server's last DPoP-Nonce (§8, §9), if it gave one.
	Nonce string
}

// Proof returns a DPoP proof JWT for r, issued at now, with a fresh jti.
func (k *Key) Proof(r Request, now time.Time) (string, error) {
	htu, err := targetURI(r.URL)
	if err != nil {
		return "", err
	}
	if !isToken(r.Method) {
		return "", errors.New("dpop: proof needs an HTTP method")
	}
	claims := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{JTI: rand.Text(), HTM: r.Method, HTU: htu, IAT: now.Unix(), Nonce: r.Nonce}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		claims.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop: proof claims: %w", err)
	}
	signing := k.header + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	// RFC 7518 §3.4: R and S as 32-byte big-endian integers, concatenated.
	var sig [64]byte
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig[:]), nil
}

// targetURI is raw without its query and fragment (RFC 9449 §4.2 htu).
// The URL is not quoted in the error: a query may hold a secret.
func targetURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", errors.New("dpop: proof needs an absolute http(s) URL")
	}
	if s := strings.ToLower(u.Scheme); s != "https" && s != "http" {
		return "", errors.New("dpop: proof needs an absolute http(s) URL")
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String(), nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), as a
// method is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
