// Package clientcreds is the client credentials grant (RFC 6749 §4.4)
// over a latch.Config, as x/oauth2's clientcredentials is: the client
// authenticates with the Config's secret, or with a JWT signed by its
// private key (RFC 7523 §2.2, OIDC Core §9 private_key_jwt). The answer
// has no refresh token: a latch.Source renews it with Regrant.
package clientcreds

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// GrantType is the client credentials grant type (RFC 6749 §4.4.2).
const GrantType = "client_credentials"

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLife is how long an assertion is valid (RFC 7523 §3 item 4:
// short). It is signed anew for every request.
const assertionLife = 2 * time.Minute

// Key signs client assertions (RFC 7523 §3). Its String never shows
// the private key.
type Key struct {
	// Signer is an RSA key (RS256), an ECDSA P-256 or P-384 key (ES256,
	// ES384) or an Ed25519 key (EdDSA).
	Signer crypto.Signer
	// ID is the key's kid in the JWT header, as registered with the
	// server; empty sends none.
	ID string
	// Audience is the assertion's aud; empty means the token endpoint
	// URL (RFC 7523 §3 item 3). Some servers want their issuer.
	Audience string
}

// String describes k without its private key.
func (k *Key) String() string {
	alg, _ := algorithm(k.Signer)
	return fmt.Sprintf("clientcreds.Key{Alg:%s ID:%q}", alg, k.ID)
}

// GoString is String, so that %#v shows no key either.
func (k *Key) GoString() string { return k.String() }

// Token runs the client credentials grant (RFC 6749 §4.4.2) with c's
// Scopes and Params. With key, the client authenticates with a signed
// assertion and c's secret is never sent; without, with c's secret as
// c.Endpoint.AuthStyle says. Errors are latch.Config.Grant's.
func Token(ctx context.Context, c *latch.Config, key *Key) (*latch.Token, error) {
	form := url.Values{"grant_type": {GrantType}}
	if len(c.Scopes) > 0 {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	if key != nil {
		aud := key.Audience
		if aud == "" {
			aud = c.Endpoint.TokenURL
		}
		now := time.Now()
		if c.Now != nil {
			now = c.Now()
		}
		jwt, err := key.Assertion(c.ClientID, aud, now)
		if err != nil {
			return nil, fmt.Errorf("client credentials: %w", err)
		}
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", jwt)
		cc := *c
		cc.ClientSecret = ""
		cc.Endpoint.AuthStyle = latch.AuthStyleNone // RFC 6749 §2.3: one method per request
		c = &cc
	}
	t, err := c.Grant(ctx, form)
	if err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	return t, nil
}

// Assertion returns a JWT that authenticates clientID to audience
// (RFC 7523 §3): iss and sub are the client, with a random jti, valid
// for two minutes from now.
func (k *Key) Assertion(clientID, audience string, now time.Time) (string, error) {
	if k == nil || k.Signer == nil {
		return "", errors.New("no private key")
	}
	if clientID == "" || audience == "" {
		return "", errors.New("a client assertion needs a client ID and an audience")
	}
	alg, err := algorithm(k.Signer)
	if err != nil {
		return "", err
	}
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if k.ID != "" {
		header["kid"] = k.ID
	}
	claims := map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience,
		"jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sig, err := sign(k.Signer, alg, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// algorithm is the JWS alg (RFC 7518 §3.1, RFC 8037 §3.1) for s.
func algorithm(s crypto.Signer) (string, error) {
	if s == nil {
		return "", errors.New("no private key")
	}
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits: RFC 7518 §3.3 asks for 2048 or more", pub.N.BitLen())
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		}
		return "", fmt.Errorf("ECDSA curve %s: use P-256 or P-384", pub.Curve.Params().Name)
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported key type %T: use RSA, ECDSA or Ed25519", s.Public())
}

func sign(s crypto.Signer, alg string, input []byte) ([]byte, error) {
	switch alg {
	case "RS256":
		d := sha256.Sum256(input)
		return s.Sign(rand.Reader, d[:], crypto.SHA256)
	case "ES256", "ES384":
		var digest []byte
		var opts crypto.Hash
		size := 32
		if alg == "ES256" {
			d := sha256.Sum256(input)
			digest, opts = d[:], crypto.SHA256
		} else {
			d := sha512.Sum384(input)
			digest, opts, size = d[:], crypto.SHA384, 48
		}
		der, err := s.Sign(rand.Reader, digest, opts)
		if err != nil {
			return nil, err
		}
		// A JWS carries r||s, each of the curve's size (RFC 7518 §3.4).
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			return nil, fmt.Errorf("ECDSA signature: %w", err)
		}
		out := make([]byte, 2*size)
		rs.R.FillBytes(out[:size])
		rs.S.FillBytes(out[size:])
		return out, nil
	case "EdDSA":
		return s.Sign(rand.Reader, input, crypto.Hash(0))
	}
	return nil, fmt.Errorf("unsupported alg %s", alg)
}

// ParseKey reads a private key from PEM: PKCS #8 ("PRIVATE KEY"), PKCS #1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). Errors never quote
// the file. An encrypted key is refused with a message saying so.
func ParseKey(data []byte) (crypto.Signer, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		if block.Type != "EC PARAMETERS" { // openssl ecparam -genkey writes one first
			break
		}
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errors.New("the private key is encrypted; give an unencrypted key (for example: openssl pkey -in key.pem -out plain.pem)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key could not be parsed")
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	if _, err := algorithm(s); err != nil {
		return nil, err
	}
	return s, nil
}
