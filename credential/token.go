package credential

import (
	"fmt"
	"strings"
	"time"
)

// Key names one credential: the issuer that minted it, the client it was
// issued to, and the account (organization) it acts for.
type Key struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	Account  string `json:"account,omitempty"`
}

// String returns a printable form of k. It holds no secret.
func (k Key) String() string {
	s := k.Issuer + " client=" + k.ClientID
	if k.Account != "" {
		s += " account=" + k.Account
	}
	return s
}

// Token is one credential's whole token set (RFC 6749 §5.1), bound to the
// issuer and client that minted it. A Token is saved and loaded as one unit
// and is never modified after it is handed out; refreshing makes a new one.
type Token struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// RefreshExpiry is when the refresh token stops working, when the
	// server said so (refresh_token_expires_in); zero if unknown.
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
	// IssuedAt is when the access token was obtained. With Expiry it gives
	// the token's lifetime, which bounds the early-refresh margin.
	IssuedAt time.Time `json:"issued_at,omitzero"`

	Issuer   string `json:"issuer,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Account  string `json:"account,omitempty"`
	// ClientSecret is the client's secret (RFC 6749 §2.3.1) when the
	// server requires one, kept with the set in the same store so that
	// it never lands in a config file. A latch.Source uses it for
	// refreshes when its Config has none.
	ClientSecret string `json:"client_secret,omitempty"`
	// User names who the grant was issued to, for display: the verified
	// id_token's or userinfo's preferred_username, email or subject.
	User string `json:"user,omitempty"`
	// IDToken is the OpenID Connect id_token of the answer that made this
	// set (OIDC Core §3.1.3.3), unverified; it is never stored.
	IDToken string `json:"-"`

	// Lineage is a random id given to each login; every token set a
	// refresh derives from that login keeps it. With Generation it
	// orders the sets of one login and tells a re-login from a rotation.
	Lineage string `json:"lineage,omitempty"`
	// Generation grows by one on every rotation within a lineage.
	Generation uint64 `json:"generation"`
	// Revoked, when set, says why the grant is dead (the server's terminal
	// answer, redacted). Such a set keeps only an access token that may
	// still work until it expires or the server rejects it.
	Revoked string `json:"revoked,omitempty"`
}

// Authorization returns the value of the Authorization header that sends
// t (RFC 6750 §2.1): "Bearer " and the access token, or the server's own
// token_type when it is not bearer.
func (t *Token) Authorization() string {
	typ := t.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer" // some servers send "bearer"
	}
	return typ + " " + t.AccessToken
}

// Key returns the key t is bound to, and stored under.
func (t *Token) Key() Key { return Key{Issuer: t.Issuer, ClientID: t.ClientID, Account: t.Account} }

// Bind returns t bound to k: t itself when t.Key() is k, else a copy with
// k's issuer, client and account where t has none. A credential's
// identity is its Key; storekit.Update (so Put) and latch.Source bind
// every set they write or use, so a set never says one identity and is
// stored under another. A token bound to another issuer, client or
// account is refused.
func Bind(k Key, t *Token) (*Token, error) {
	if t.Key() == k {
		return t, nil
	}
	if (t.Issuer != "" && t.Issuer != k.Issuer) || (t.ClientID != "" && t.ClientID != k.ClientID) || (t.Account != "" && t.Account != k.Account) {
		return nil, fmt.Errorf("token set of %s cannot be the credential %s", t.Key(), k)
	}
	c := *t
	c.Issuer, c.ClientID, c.Account = k.Issuer, k.ClientID, k.Account
	return &c, nil
}

// Refreshable reports whether t carries a refresh token.
func (t *Token) Refreshable() bool { return t != nil && t.RefreshToken != "" }

// Expired reports whether t's access token has expired at now. A token with
// no known expiry never expires here; the server's 401 is the backstop.
func (t *Token) Expired(now time.Time) bool {
	return t == nil || t.AccessToken == "" || (!t.Expiry.IsZero() && !now.Before(t.Expiry))
}

// Fresh reports whether t can be used as is at now: a latch.Source with
// this Skew hands it out without refreshing. A token is fresh until skew
// before its expiry (see EarlyExpiry).
func (t *Token) Fresh(now time.Time, skew time.Duration) bool {
	return !t.Expired(now) && (t.Expiry.IsZero() || now.Before(t.EarlyExpiry(skew)))
}

// EarlyExpiry is when a latch.Source with this Skew refreshes t: skew
// before its expiry, the margin capped at a quarter of the token's
// lifetime so that short-lived tokens are not refreshed on every
// request. It is zero when the expiry is unknown.
func (t *Token) EarlyExpiry(skew time.Duration) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	if !t.IssuedAt.IsZero() {
		if life := t.Expiry.Sub(t.IssuedAt); life > 0 && skew > life/4 {
			skew = life / 4
		}
	}
	return t.Expiry.Add(-skew)
}

// SameSet reports whether t and u are the same token set of one login:
// same lineage, generation and access token. A set whose dead grant was
// dropped (see latch.Source) is still the same set: the server rejected
// it, and no one has refreshed since. nil is the same set only as nil.
func (t *Token) SameSet(u *Token) bool {
	if t == nil || u == nil {
		return t == u
	}
	return t.Lineage == u.Lineage && t.Generation == u.Generation && t.AccessToken == u.AccessToken
}

// Matches reports whether t is exactly the stored set u: the same
// lineage, generation, access and refresh token. Stores use it for the
// compare in their compare-and-swap Save and Delete. nil matches only nil.
func (t *Token) Matches(u *Token) bool {
	return t.SameSet(u) && (t == nil || t.RefreshToken == u.RefreshToken)
}
