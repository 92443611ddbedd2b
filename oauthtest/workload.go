package oauthtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Workloads: the client credentials grant (RFC 6749 §4.4) for clients
// that authenticate with the secret of Quirks.ClientSecret or with a
// JWT signed by a key given to AddClientKey (RFC 7523 §2.2), and token
// exchange (RFC 8693) of subject tokens from the server's own workload
// issuer: WorkloadToken mints them as a Kubernetes API server projects
// them into a file, and GET /_actions/idtoken hands them out as a GitHub
// Actions runner does.

// ActionsPath is where the server answers as a GitHub Actions runner's
// ACTIONS_ID_TOKEN_REQUEST_URL.
const ActionsPath = "/_actions/idtoken"

// workloads holds the keys of the workload side.
type workloads struct {
	issuer     string
	audience   string // what a subject token's aud must name: the server
	tokenURL   string
	key        *ecdsa.PrivateKey
	requestTok string // ACTIONS_ID_TOKEN_REQUEST_TOKEN

	mu         sync.Mutex
	clientKeys map[string]crypto.PublicKey
	jtis       map[string]time.Time // client assertions seen, until they expire
}

func newWorkloads(issuer, tokenURL string) (*workloads, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &workloads{issuer: issuer + "/_workload", audience: issuer, tokenURL: tokenURL, key: key, requestTok: rand.Text(),
		clientKeys: map[string]crypto.PublicKey{}, jtis: map[string]time.Time{}}, nil
}

// WorkloadIssuer is the iss of the subject tokens WorkloadToken mints.
func (s *Server) WorkloadIssuer() string { return s.work.issuer }

// WorkloadToken mints a subject token (a JWT, RFC 7519) for subject with
// audience aud, valid for ttl, as a Kubernetes service-account token or a
// CI job's OIDC token is. Token exchange here accepts it when aud is the
// server's URL.
func (s *Server) WorkloadToken(subject, aud string, ttl time.Duration) string {
	return s.work.mint(subject, aud, s.store.now(), ttl)
}

func (w *workloads) mint(subject, aud string, now time.Time, ttl time.Duration) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: w.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": w.issuer, "sub": subject, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": rand.Text()})
	obj, err := sig.Sign(claims)
	if err != nil {
		panic(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// ActionsRequest returns what a GitHub Actions runner puts in
// ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN: GET the
// URL (with &audience=…) with the bearer token for a JWT whose subject
// is "repo:dev/demo:ref:refs/heads/main", valid for 5 minutes.
func (s *Server) ActionsRequest() (requestURL, requestToken string) {
	return s.URL + ActionsPath + "?api-version=2.0", s.work.requestTok
}

func (s *Server) actionsToken(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || subtle.ConstantTimeCompare([]byte(tok), []byte(s.work.requestTok)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad request token"})
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		aud = "https://github.com/dev" // the runner's default: the repository owner's URL
	}
	s.counters.add(func(c *Counters) { c.WorkloadTokens++ })
	writeJSON(w, http.StatusOK, map[string]any{"count": 1, "value": s.work.mint("repo:dev/demo:ref:refs/heads/main", aud, s.store.now(), 5*time.Minute)})
}

// AddClientKey registers the public key of a confidential client, which
// then authenticates with private_key_jwt (RFC 7523 §2.2; RSA, ECDSA P-256
// or P-384, Ed25519) and may use the client credentials grant.
func (s *Server) AddClientKey(clientID string, pub crypto.PublicKey) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	s.work.clientKeys[clientID] = pub
}

// confidentialKey marks a request whose client the front layer has
// authenticated (secret or assertion); its value is the client_id.
type confidentialKey struct{}

func authenticated(ctx context.Context) string {
	id, _ := ctx.Value(confidentialKey{}).(string)
	return id
}

// assertionAuth checks a JWT client assertion (RFC 7523 §3) against the
// registered key: signature, iss = sub = client_id, aud the token
// endpoint or the issuer, unexpired and at most 10 minutes long, jti
// unseen. It answers invalid_client itself; ok reports success and id
// the client.
func (s *Server) assertionAuth(w http.ResponseWriter, r *http.Request) (id string, ok bool) {
	fail := func(why string) (string, bool) {
		s.counters.add(func(c *Counters) { c.ClientAuthFailures++ })
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": why})
		return "", false
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fail("unsupported client_assertion_type")
	}
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
		return fail("the client used more than one authentication method")
	}
	obj, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"),
		[]jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.EdDSA})
	if err != nil {
		return fail("client_assertion is not a signed JWT")
	}
	var claims struct {
		Iss, Sub, Jti string
		Aud           oidc.Audience
		Exp, Iat      int64
	}
	if err := json.Unmarshal(obj.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return fail("client_assertion claims are not JSON")
	}
	s.work.mu.Lock()
	pub := s.work.clientKeys[claims.Iss]
	s.work.mu.Unlock()
	if pub == nil {
		return fail("no key registered for this client")
	}
	if !keyFits(pub, obj.Signatures[0].Header.Algorithm) {
		return fail("client_assertion alg does not fit the registered key")
	}
	if _, err := obj.Verify(pub); err != nil {
		return fail("client_assertion signature does not verify")
	}
	now := s.store.now()
	switch {
	case claims.Sub != claims.Iss:
		return fail("client_assertion sub is not its iss")
	case r.PostForm.Get("client_id") != "" && r.PostForm.Get("client_id") != claims.Iss:
		return fail("client_id is not the assertion's iss")
	case !slices.Contains([]string(claims.Aud), s.work.tokenURL) && !slices.Contains([]string(claims.Aud), s.URL):
		return fail("client_assertion aud is neither the token endpoint nor the issuer")
	case claims.Exp <= now.Unix():
		return fail("client_assertion expired")
	case claims.Exp-now.Unix() > 600:
		return fail("client_assertion lives longer than 10 minutes")
	case claims.Jti == "":
		return fail("client_assertion has no jti")
	}
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	for j, until := range s.work.jtis {
		if !now.Before(until) {
			delete(s.work.jtis, j)
		}
	}
	if _, seen := s.work.jtis[claims.Iss+" "+claims.Jti]; seen {
		s.counters.add(func(c *Counters) { c.ClientAuthFailures++ })
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client_assertion replayed (jti seen)"})
		return "", false
	}
	s.work.jtis[claims.Iss+" "+claims.Jti] = time.Unix(claims.Exp, 0)
	return claims.Iss, true
}

func keyFits(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS256)
	case *ecdsa.PublicKey:
		return (k.Curve == elliptic.P256() && alg == string(jose.ES256)) || (k.Curve == elliptic.P384() && alg == string(jose.ES384))
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// confidentialClient is a client the front layer authenticated: it may
// use the client credentials grant.
type confidentialClient struct{ publicClient }

func (c confidentialClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodPrivateKeyJWT }
func (c confidentialClient) GrantTypes() []oidc.GrantType {
	return append(c.publicClient.GrantTypes(), oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange)
}

// ClientCredentials implements op.ClientCredentialsStorage. The secret or
// assertion was checked in front (clientAuth): a client that did not
// authenticate there is refused, as RFC 6749 §4.4.2 requires.
func (s *storage) ClientCredentials(ctx context.Context, clientID, _ string) (op.Client, error) {
	if id := authenticated(ctx); id == "" || id != clientID {
		return nil, errors.New("the client credentials grant needs client authentication (a secret or private_key_jwt)")
	}
	return confidentialClient{publicClient{id: clientID}}, nil
}

// clientCredentialsRequest is the token request of the client
// credentials grant: the client is its own subject.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	s.counters.add(func(c *Counters) { c.ClientCredentialGrants++ })
	return &clientCredentialsRequest{clientID: clientID, scopes: slices.Clone(scopes)}, nil
}

// ValidateTokenExchangeRequest implements op.TokenExchangeStorage: only an
// access token is issued (RFC 8693 §2.2.1).
func (s *storage) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	if req.GetRequestedTokenType() != oidc.AccessTokenType {
		return oidc.ErrInvalidRequest().WithDescription("only access tokens are issued")
	}
	return nil
}

// CreateTokenExchangeRequest implements op.TokenExchangeStorage.
func (s *storage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	s.counters.add(func(c *Counters) { c.Exchanges++ })
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest implements op.TokenExchangeStorage.
func (s *storage) GetPrivateClaimsFromTokenExchangeRequest(context.Context, op.TokenExchangeRequest) (map[string]any, error) {
	return nil, nil
}

// SetUserinfoFromTokenExchangeRequest implements op.TokenExchangeStorage.
func (s *storage) SetUserinfoFromTokenExchangeRequest(_ context.Context, info *oidc.UserInfo, req op.TokenExchangeRequest) error {
	info.Subject = req.GetSubject()
	return nil
}

// VerifyExchangeSubjectToken implements op.TokenExchangeTokensVerifierStorage:
// a JWT from the workload issuer, signed by its key, for this server's
// audience, unexpired.
func (s *storage) VerifyExchangeSubjectToken(_ context.Context, token string, typ oidc.TokenType) (string, string, map[string]any, error) {
	if typ != oidc.JWTTokenType && typ != oidc.IDTokenType {
		return "", "", nil, errors.New("unsupported subject token type")
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", "", nil, err
	}
	b, err := obj.Verify(&s.work.key.PublicKey)
	if err != nil {
		return "", "", nil, err
	}
	var c struct {
		Iss, Sub, Jti string
		Aud           oidc.Audience
		Exp           int64
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", "", nil, err
	}
	if c.Iss != s.work.issuer || !slices.Contains([]string(c.Aud), s.work.audience) || c.Exp <= s.now().Unix() || c.Sub == "" {
		return "", "", nil, errors.New("subject token refused")
	}
	return c.Jti, c.Sub, map[string]any{"iss": c.Iss}, nil
}

// VerifyExchangeActorToken implements op.TokenExchangeTokensVerifierStorage.
func (s *storage) VerifyExchangeActorToken(ctx context.Context, token string, typ oidc.TokenType) (string, string, map[string]any, error) {
	return s.VerifyExchangeSubjectToken(ctx, token, typ)
}
