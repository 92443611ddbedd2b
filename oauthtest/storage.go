package oauthtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// refreshPrefix marks refresh tokens minted here, so redaction tests can spot them.
const refreshPrefix = "lrt_"

// authRequestTTL bounds how long an unfinished or consumed auth request is kept.
const authRequestTTL = 10 * time.Minute

var (
	errNotFound       = errors.New("not found")
	errUnknownCode    = errors.New("unknown user code")
	errDeviceFinished = errors.New("device authorization already decided")
	errDeviceExpired  = errors.New("device code expired")
)

// storage is a thread-safe in-memory op.Storage and op.DeviceAuthorizationStorage.
// It owns the refresh-token policy: every refresh rotates the token, and a
// rotated token presented again revokes its whole family (RFC 9700 §4.14.2).
type storage struct {
	now     func() time.Time
	user    string
	clients []string // empty: any client_id is a public client
	// registered holds client_ids given by dynamic registration.
	registered sync.Map
	accessTTL  time.Duration
	work       *workloads
	docs       *documents
	refreshTT  time.Duration
	idle       time.Duration // Options.RefreshIdle
	grace      time.Duration
	tokenOnly  bool
	approveN   int
	interval   time.Duration
	counters   *counterSet
	// quirks are the server's current ones (RevokeAccessOnRefresh,
	// ReuseKeepsFamily); nil means none.
	quirks func() Quirks
	// noOffline holds the code challenges of authorization requests that
	// get no refresh token (Quirks.RefreshTokenOnlyWith).
	noOffline sync.Map
	// sessionBound holds the code challenges of logins whose refresh
	// tokens are bound to Quirks.SessionIdle.
	sessionBound sync.Map
	key          *ecdsa.PrivateKey
	keyID        string

	mu        sync.Mutex
	authReqs  map[string]*authRequest // by id
	codes     map[string]string       // code -> auth request id
	access    map[string]*accessToken // by id
	refresh   map[string]*refreshRec  // by token value
	families  map[string]*family      // by id
	devices   map[string]*deviceAuth  // by device code
	userCodes map[string]string       // normalised user code -> device code
}

type family struct {
	sessionBound bool // refresh tokens live Quirks.SessionIdle unused
	created      time.Time
	id           string
	clientID     string
	subject      string
	scopes       []string
	authTime     time.Time
	revoked      bool
	accessID     []string
	refresh      []string
}

type refreshRec struct {
	token     string
	familyID  string
	expires   time.Time
	rotated   bool
	rotatedAt time.Time
	revoked   bool // alone (Options.RevokeTokenOnly)
}

type accessToken struct {
	id       string
	familyID string
	clientID string
	subject  string
	scopes   []string
	expires  time.Time
	revoked  bool
}

type deviceAuth struct {
	clientID string
	userCode string
	scopes   []string
	expires  time.Time
	lastPoll time.Time
	pending  int // polls answered authorization_pending
	done     bool
	denied   bool
	consumed bool
	subject  string
	authTime time.Time
}

func newStorage(opts Options, counters *counterSet, now func() time.Time) (*storage, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &storage{
		now:       now,
		user:      opts.User,
		clients:   slices.Clone(opts.Clients),
		accessTTL: opts.AccessTTL,
		docs:      newDocuments(),
		refreshTT: opts.RefreshTTL,
		idle:      opts.RefreshIdle,
		grace:     opts.RotationGrace,
		tokenOnly: opts.RevokeTokenOnly,
		approveN:  opts.DeviceApproveAfter,
		interval:  opts.DeviceInterval,
		counters:  counters,
		key:       key,
		keyID:     rand.Text()[:8],
		authReqs:  map[string]*authRequest{},
		codes:     map[string]string{},
		access:    map[string]*accessToken{},
		refresh:   map[string]*refreshRec{},
		families:  map[string]*family{},
		devices:   map[string]*deviceAuth{},
		userCodes: map[string]string{},
	}, nil
}

func (s *storage) quirk() Quirks {
	if s.quirks == nil {
		return Quirks{}
	}
	return s.quirks()
}

// reportedExpiry pads an expiry so that zitadel, which truncates the
// remaining time to whole seconds, answers expires_in equal to the TTL.
func reportedExpiry(exp time.Time) time.Time { return exp.Add(time.Second - time.Millisecond) }

// --- clients -----------------------------------------------------------------

func (s *storage) clientAllowed(id string) bool {
	if id == "" {
		return false
	}
	if isDocumentID(id) {
		_, err := s.document(context.Background(), id)
		return err == nil
	}
	if _, ok := s.registered.Load(id); ok {
		return true
	}
	return len(s.clients) == 0 || slices.Contains(s.clients, id)
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	if isDocumentID(clientID) {
		redirects, err := s.document(ctx, clientID)
		if err != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("%s", err.Error())
		}
		return documentClient{publicClient{id: clientID}, redirects}, nil
	}
	if !s.clientAllowed(clientID) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id")
	}
	return publicClient{id: clientID}, nil
}

// AuthorizeClientIDSecret implements op.OPStorage. Clients are public: an
// empty secret (Basic auth "id:") counts as no authentication.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	if !s.clientAllowed(clientID) {
		return errors.New("unknown client_id")
	}
	if secret != "" {
		return errors.New("client secrets are not supported, clients are public")
	}
	return nil
}

// --- authorization code ----------------------------------------------------

// CreateAuthRequest implements op.AuthStorage. It enforces PKCE with S256
// (RFC 7636 §4.2) and always grants offline_access, so every code yields a
// refresh token.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE, RFC 7636)")
	}
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	scopes := withOffline(req.Scopes)
	if _, no := s.noOffline.LoadAndDelete(req.CodeChallenge); no {
		scopes = slices.DeleteFunc(slices.Clone(req.Scopes), func(sc string) bool { return sc == oidc.ScopeOfflineAccess })
	}
	now := s.now()
	ar := &authRequest{
		id:           rand.Text(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       scopes,
		challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		created:      now,
	}
	if _, ok := s.sessionBound.LoadAndDelete(req.CodeChallenge); ok {
		ar.sessionBound = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.authReqs {
		if now.Sub(old.created) > authRequestTTL {
			delete(s.authReqs, id)
			delete(s.codes, old.code)
		}
	}
	s.authReqs[ar.id] = ar
	return ar.clone(), nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[id]
	if !ok || ar.consumed {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	return ar.clone(), nil
}

// AuthRequestByCode implements op.AuthStorage. A code presented after it was
// redeemed revokes the tokens issued for it (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[s.codes[code]]
	if !ok || code == "" || !ar.done {
		return nil, fmt.Errorf("authorization code: %w", errNotFound)
	}
	if ar.consumed {
		s.replayedCodeLocked(ar)
		return nil, errors.New("authorization code already redeemed")
	}
	return ar.clone(), nil
}

func (s *storage) replayedCodeLocked(ar *authRequest) {
	s.counters.add(func(c *Counters) { c.CodeReplays++ })
	if ar.familyID != "" {
		s.revokeFamilyLocked(ar.familyID)
	}
}

// SaveAuthCode implements op.AuthStorage.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[id]
	if !ok || ar.consumed {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	ar.code = code
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.AuthStorage. The request is kept as a
// consumed marker so that a replayed code can be detected.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.authReqs[id]; ok {
		ar.consumed = true
	}
	return nil
}

// approveAuthRequest marks an auth request as approved by the user.
func (s *storage) approveAuthRequest(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[id]
	if !ok || ar.consumed {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	ar.done = true
	ar.subject = s.user
	ar.authTime = s.now()
	s.counters.add(func(c *Counters) { c.Approvals++ })
	return nil
}

// denyAuthRequest consumes an auth request and returns it for the error redirect.
func (s *storage) denyAuthRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[id]
	if !ok || ar.consumed || ar.done {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	ar.consumed = true
	s.counters.add(func(c *Counters) { c.Denials++ })
	return ar.clone(), nil
}

func (s *storage) authRequest(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.authReqs[id]
	if !ok || ar.consumed {
		return nil, false
	}
	return ar.clone(), true
}

// --- tokens ------------------------------------------------------------------

// CreateAccessToken implements op.AuthStorage for grants without a refresh token.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.beginGrantLocked(req)
	if err != nil {
		return "", time.Time{}, err
	}
	at := s.mintAccessLocked(g, "")
	return at.id, reportedExpiry(at.expires), nil
}

// CreateAccessAndRefreshTokens implements op.AuthStorage. For the refresh
// grant it rotates currentRefreshToken; a token that was already rotated is
// reuse, which revokes the family and answers invalid_grant.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if rr, ok := req.(*refreshTokenRequest); ok {
		rec, err := s.liveRefreshLocked(current, true)
		if err != nil {
			return "", "", time.Time{}, err
		}
		if rec.familyID != rr.familyID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant()
		}
		if !rec.rotated {
			rec.rotated, rec.rotatedAt = true, now
		}
		fam := s.families[rec.familyID]
		if s.quirk().RevokeAccessOnRefresh {
			for _, aid := range fam.accessID {
				if at := s.access[aid]; at != nil {
					at.revoked = true
				}
			}
		}
		at := s.mintAccessLocked(grant{clientID: fam.clientID, subject: fam.subject, scopes: rr.scopes}, fam.id)
		newRT := s.mintRefreshLocked(fam, now)
		s.counters.add(func(c *Counters) { c.RefreshSuccesses++ })
		return at.id, newRT, reportedExpiry(at.expires), nil
	}
	g, err := s.beginGrantLocked(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	fam := &family{id: rand.Text(), clientID: g.clientID, subject: g.subject, scopes: g.scopes, authTime: g.authTime, created: now}
	if g.authReq != nil {
		fam.sessionBound = g.authReq.sessionBound
	}
	s.families[fam.id] = fam
	if g.authReq != nil {
		g.authReq.familyID = fam.id
	}
	at := s.mintAccessLocked(g, fam.id)
	rt := s.mintRefreshLocked(fam, now)
	return at.id, rt, reportedExpiry(at.expires), nil
}

type grant struct {
	clientID string
	subject  string
	scopes   []string
	authTime time.Time
	authReq  *authRequest // stored request, for the code grant
}

// beginGrantLocked validates a code or device grant and consumes a code
// exactly once, even when two exchanges race.
func (s *storage) beginGrantLocked(req op.TokenRequest) (grant, error) {
	switch r := req.(type) {
	case *authRequest:
		ar, ok := s.authReqs[r.id]
		if !ok || !ar.done {
			return grant{}, oidc.ErrInvalidGrant().WithDescription("invalid code")
		}
		if ar.codeRedeemed {
			s.replayedCodeLocked(ar)
			return grant{}, oidc.ErrInvalidGrant().WithDescription("code already redeemed")
		}
		ar.codeRedeemed = true
		s.counters.add(func(c *Counters) { c.CodeExchanges++ })
		return grant{clientID: ar.clientID, subject: ar.subject, scopes: ar.scopes, authTime: ar.authTime, authReq: ar}, nil
	case *op.DeviceAuthorizationState:
		s.counters.add(func(c *Counters) { c.DeviceGrants++ })
		return grant{clientID: r.ClientID, subject: r.Subject, scopes: r.Scopes, authTime: r.AuthTime}, nil
	case *refreshTokenRequest:
		return grant{clientID: r.clientID, subject: r.subject, scopes: r.scopes, authTime: r.authTime}, nil
	case *clientCredentialsRequest:
		return grant{clientID: r.clientID, subject: r.clientID, scopes: r.scopes, authTime: s.now()}, nil
	case op.TokenExchangeRequest:
		return grant{clientID: r.GetClientID(), subject: r.GetSubject(), scopes: r.GetScopes(), authTime: s.now()}, nil
	default:
		return grant{}, oidc.ErrUnsupportedGrantType()
	}
}

func (s *storage) mintAccessLocked(g grant, familyID string) *accessToken {
	at := &accessToken{
		id:       rand.Text(),
		familyID: familyID,
		clientID: g.clientID,
		subject:  g.subject,
		scopes:   slices.Clone(g.scopes),
		expires:  s.now().Add(s.accessTTL),
	}
	s.access[at.id] = at
	if fam := s.families[familyID]; fam != nil {
		fam.accessID = append(fam.accessID, at.id)
	}
	return at
}

func (s *storage) mintRefreshLocked(fam *family, now time.Time) string {
	ttl := s.refreshTT
	if s.idle > 0 {
		ttl = min(ttl, s.idle)
	}
	if idle := time.Duration(s.quirk().SessionIdle) * time.Second; fam.sessionBound && idle > 0 {
		ttl = min(ttl, idle)
	}
	rec := &refreshRec{token: refreshPrefix + rand.Text() + rand.Text(), familyID: fam.id, expires: now.Add(ttl)}
	s.refresh[rec.token] = rec
	fam.refresh = append(fam.refresh, rec.token)
	return rec.token
}

// liveRefreshLocked returns the record of a refresh token that may be
// redeemed. A rotated token is reuse: its family is revoked (RFC 9700 §4.14.2).
// A rotated token within the grace period may be redeemed again; final
// says this is the redemption itself (counted), not the request's lookup.
func (s *storage) liveRefreshLocked(token string, final bool) (*refreshRec, error) {
	rec, ok := s.refresh[token]
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	}
	fam := s.families[rec.familyID]
	if fam == nil || fam.revoked || rec.revoked {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token revoked")
	}
	if rec.rotated && s.grace > 0 && s.now().Before(rec.rotatedAt.Add(s.grace)) {
		if final {
			s.counters.add(func(c *Counters) { c.GraceReuses++ })
		}
		return rec, nil
	}
	if rec.rotated {
		s.counters.add(func(c *Counters) { c.ReuseDetections++ })
		if s.quirk().ReuseKeepsFamily {
			return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		s.revokeFamilyLocked(rec.familyID)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token reused; its family is revoked")
	}
	if !s.now().Before(rec.expires) {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	if max := time.Duration(s.quirk().RefreshMaxAge) * time.Second; max > 0 && !s.now().Before(fam.created.Add(max)) {
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired: the login is older than its maximum lifetime")
	}
	return rec, nil
}

// TokenRequestByRefreshToken implements op.AuthStorage.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.liveRefreshLocked(token, false)
	if err != nil {
		return nil, err
	}
	fam := s.families[rec.familyID]
	return &refreshTokenRequest{
		familyID: fam.id,
		clientID: fam.clientID,
		subject:  fam.subject,
		scopes:   slices.Clone(fam.scopes),
		authTime: fam.authTime,
	}, nil
}

func (s *storage) revokeFamilyLocked(id string) bool {
	fam := s.families[id]
	if fam == nil || fam.revoked {
		return false
	}
	fam.revoked = true
	for _, aid := range fam.accessID {
		if at := s.access[aid]; at != nil {
			at.revoked = true
		}
	}
	s.counters.add(func(c *Counters) { c.FamiliesRevoked++ })
	return true
}

// revokeFamilyOf revokes the family of any refresh token ever issued in it,
// current or rotated. It reports whether a live family was revoked.
func (s *storage) revokeFamilyOf(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refresh[token]
	if !ok {
		return false
	}
	return s.revokeFamilyLocked(rec.familyID)
}

// refreshLeft returns how long refresh token rt has left, in whole
// seconds rounded down, so a client never believes it lives longer than it
// does; false for an unknown token.
func (s *storage) refreshLeft(rt string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refresh[rt]
	if !ok {
		return 0, false
	}
	return int(max(rec.expires.Sub(s.now()), 0) / time.Second), true
}

// sessionExpiry returns when refresh token rt expires, if its family is
// bound to Quirks.SessionIdle.
func (s *storage) sessionExpiry(rt string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refresh[rt]
	if !ok || s.families[rec.familyID] == nil || !s.families[rec.familyID].sessionBound {
		return time.Time{}, false
	}
	return rec.expires, true
}

// expireAccessTokens makes every access token expire now.
func (s *storage) expireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, at := range s.access {
		if at.expires.After(now) {
			at.expires = now
		}
	}
}

// accessTokenState says why an access token is not usable.
type accessTokenState int

const (
	tokenValid accessTokenState = iota
	tokenUnknown
	tokenExpired
	tokenRevoked
)

func (s *storage) checkAccess(id, subject string) (accessToken, accessTokenState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.access[id]
	switch {
	case !ok || at.subject != subject:
		return accessToken{}, tokenUnknown
	case at.revoked:
		return accessToken{}, tokenRevoked
	case !s.now().Before(at.expires):
		return accessToken{}, tokenExpired
	}
	return *at, tokenValid
}

// TerminateSession implements op.AuthStorage.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, fam := range s.families {
		if fam.subject == userID && fam.clientID == clientID {
			s.revokeFamilyLocked(id)
		}
	}
	return nil
}

// RevokeToken implements op.AuthStorage (RFC 7009 §2.1). Revoking a refresh
// token revokes its family, access tokens included; revoking an access token
// revokes that token. Unknown tokens are not an error (RFC 7009 §2.2).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.refresh[tokenOrID]; ok {
		fam := s.families[rec.familyID]
		if fam.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if s.tokenOnly {
			if !rec.revoked {
				rec.revoked = true
				s.counters.add(func(c *Counters) { c.Revocations++ })
			}
			return nil
		}
		revoked := s.revokeFamilyLocked(fam.id)
		if s.quirk().RevokeGrant {
			for id, f := range s.families {
				if f.subject == fam.subject && f.clientID == fam.clientID && s.revokeFamilyLocked(id) {
					revoked = true
				}
			}
		}
		if revoked {
			s.counters.add(func(c *Counters) { c.Revocations++ })
		}
		return nil
	}
	if at, ok := s.access[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if !at.revoked {
			at.revoked = true
			s.counters.add(func(c *Counters) { c.Revocations++ })
		}
	}
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return s.families[rec.familyID].subject, token, nil
}

// --- keys --------------------------------------------------------------------

type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// SigningKey implements op.AuthStorage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: s.keyID, key: s.key}, nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

// KeySet implements op.AuthStorage.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{id: s.keyID, key: s.key}}}, nil
}

// --- user info -----------------------------------------------------------------

func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string) {
	info.Subject = subject
	info.PreferredUsername = subject
	info.Name = displayName(subject)
}

// SetUserinfoFromScopes implements op.OPStorage (deprecated by zitadel; empty).
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	s.fillUserinfo(info, req.GetSubject())
	return nil
}

// SetUserinfoFromToken implements op.OPStorage for the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	if _, st := s.checkAccess(tokenID, subject); st != tokenValid {
		return errors.New("access token is not valid")
	}
	s.fillUserinfo(info, subject)
	return nil
}

// SetIntrospectionFromToken implements op.OPStorage. Introspection needs a
// confidential client, and there are none.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

// GetPrivateClaimsFromScopes implements op.OPStorage.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.OPStorage. JWT profile is not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("client keys are not supported")
}

// ValidateJWTProfileScopes implements op.OPStorage.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// --- device authorization (RFC 8628) -------------------------------------------

// StoreDeviceAuthorization implements op.DeviceAuthorizationStorage.
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for dc, d := range s.devices {
		if now.Sub(d.expires) > authRequestTTL {
			delete(s.devices, dc)
			delete(s.userCodes, normalizeUserCode(d.userCode))
		}
	}
	norm := normalizeUserCode(userCode)
	if _, dup := s.userCodes[norm]; dup {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceAuth{clientID: clientID, userCode: userCode, scopes: withOffline(scopes), expires: expires}
	s.userCodes[norm] = deviceCode
	return nil
}

// errSlowDown wraps context.DeadlineExceeded because that is what zitadel
// maps to the slow_down error (RFC 8628 §3.5).
var errSlowDown = fmt.Errorf("polling faster than the interval: %w", context.DeadlineExceeded)

// GetDeviceAuthorizatonState implements op.DeviceAuthorizationStorage. A poll
// less than half the interval after the previous one answers slow_down. With
// DeviceApproveAfter N, the first N polls answer authorization_pending and the
// next one is approved.
func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.clientID != clientID {
		return nil, fmt.Errorf("device code: %w", errNotFound)
	}
	s.counters.add(func(c *Counters) { c.DevicePolls++ })
	now := s.now()
	last := d.lastPoll
	d.lastPoll = now
	if !last.IsZero() && now.Sub(last) < s.interval/2 {
		s.counters.add(func(c *Counters) { c.SlowDowns++ })
		return nil, errSlowDown
	}
	state := &op.DeviceAuthorizationState{ClientID: d.clientID, Scopes: slices.Clone(d.scopes), Expires: d.expires}
	switch {
	case d.consumed || !now.Before(d.expires):
		// zitadel compares Expires with the wall clock.
		state.Expires = time.Now().Add(-time.Second)
		return state, nil
	case d.denied:
		state.Denied = true
		return state, nil
	}
	if !d.done && s.approveN > 0 {
		if d.pending >= s.approveN {
			d.done, d.subject, d.authTime = true, s.user, now
		} else {
			d.pending++
		}
	}
	if d.done {
		d.consumed = true
		state.Done = true
		state.Subject = d.subject
		state.AuthTime = d.authTime
		state.AMR = []string{"pwd"}
	}
	return state, nil
}

// decideDevice approves or denies the device authorization with userCode.
func (s *storage) decideDevice(userCode string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[s.userCodes[normalizeUserCode(userCode)]]
	switch {
	case !ok:
		return errUnknownCode
	case d.done || d.denied || d.consumed:
		return errDeviceFinished
	case !s.now().Before(d.expires):
		return errDeviceExpired
	}
	if approve {
		d.done, d.subject, d.authTime = true, s.user, s.now()
		s.counters.add(func(c *Counters) { c.Approvals++ })
	} else {
		d.denied = true
		s.counters.add(func(c *Counters) { c.Denials++ })
	}
	return nil
}

func normalizeUserCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(code)))
}

func withOffline(scopes []string) []string {
	out := slices.Clone(scopes)
	if !slices.Contains(out, oidc.ScopeOfflineAccess) {
		out = append(out, oidc.ScopeOfflineAccess)
	}
	return out
}

func displayName(login string) string {
	if login == "" {
		return ""
	}
	return "Dev User " + login
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)
