package hydra

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientCredentials: a service logs in with the client credentials
// grant, authenticated by a private key (RFC 7523 private_key_jwt, a JWK
// registered with Hydra) or by a secret (client_secret_basic). The token
// has no refresh token; when it expires, 16 processes at once get a new
// one with one grant between them, and Hydra's resource check accepts it.
func TestClientCredentials(t *testing.T) {
	s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second})
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	s.createClient(map[string]any{
		"client_id": "svc-key", "token_endpoint_auth_method": "private_key_jwt",
		"token_endpoint_auth_signing_alg": "RS256",
		"grant_types":                     []string{"client_credentials"}, "response_types": []string{"token"},
		"scope": apiScope, "audience": []string{audience},
		"jwks": map[string]any{"keys": []map[string]any{{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}}},
	})
	s.createClient(map[string]any{
		"client_id": "svc-secret", "client_secret": "interop-secret-0123456789", "token_endpoint_auth_method": "client_secret_basic",
		"grant_types": []string{"client_credentials"}, "response_types": []string{"token"},
		"scope": apiScope, "audience": []string{audience},
	})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "svc.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		client string
		args   []string
		env    []string
	}{
		{"svc-key", []string{"--private-key-file", keyFile, "--key-id", "k1"}, nil},
		{"svc-secret", []string{"--grant", "client-credentials"}, []string{"LATCH_CLIENT_SECRET=interop-secret-0123456789"}},
	} {
		t.Run(tt.client, func(t *testing.T) {
			u := newUser(t, s)
			u.clientID = tt.client
			login := u.cmd("", append([]string{"auth", "login", "--scopes", apiScope, "--audience", audience}, tt.args...)...)
			login.Env = append(login.Env, tt.env...)
			var se bytes.Buffer
			login.Stderr = &se
			if err := login.Run(); err != nil {
				t.Fatalf("login: %v\n%s", err, se.String())
			}
			if tok := u.stored(); tok["refresh_token"] != nil {
				t.Fatalf("stored a refresh token: %v", tok["refresh_token"] != nil)
			}
			if r := u.ok("--api-url", s.rs, "api", "v2/user"); !strings.Contains(r.stdout, tt.client) {
				t.Fatalf("api: %s", r.stdout)
			}
			time.Sleep(3500 * time.Millisecond) // Hydra's token expires
			s.proxy.reset()
			const n = 16
			var wg sync.WaitGroup
			errs := make(chan string, n)
			for i := range n {
				wg.Go(func() {
					cmd := u.cmd("", "--api-url", s.rs, "api", "v2/user")
					var so, se bytes.Buffer
					cmd.Stdout, cmd.Stderr = &so, &se
					if err := cmd.Run(); err != nil || !strings.Contains(so.String(), tt.client) {
						errs <- fmt.Sprintf("process %d: %v: %s%s", i, err, so.String(), se.String())
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			if calls, _, _ := s.proxy.counts(); calls["client_credentials"] != 1 {
				t.Fatalf("token requests %v; want exactly 1 client_credentials grant", calls)
			}
		})
	}
}
