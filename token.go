package latch

import "github.com/latchdev/latch/credential"

// Key names one credential: the issuer that minted it, the client it was
// issued to, and the account (organization) it acts for.
type Key = credential.Key

// Token is one credential's whole token set (RFC 6749 §5.1), bound to the
// issuer and client that minted it. A Token is saved and loaded as one unit
// and is never modified after it is handed out; refreshing makes a new one.
type Token = credential.Token

// Bind returns t bound to k: t itself when t.Key() is k, else a copy with
// k's issuer, client and account where t has none (see credential.Bind).
func Bind(k Key, t *Token) (*Token, error) { return credential.Bind(k, t) }

// authorizationHeader is t's Authorization value as a header's values.
func authorizationHeader(t *Token) []string { return []string{t.Authorization()} }

// authorizationValue is a Token's Authorization header, computed once,
// and the fields it was made from, so that a Token whose fields were
// changed afterwards does not get a stale one.
type authorizationValue struct {
	accessToken, tokenType string
	header                 []string
}

func newAuthorization(t *Token) authorizationValue {
	return authorizationValue{t.AccessToken, t.TokenType, authorizationHeader(t)}
}

// of returns the header for t, a's own when t still has its fields.
func (a authorizationValue) of(t *Token) []string {
	if a.header != nil && a.accessToken == t.AccessToken && a.tokenType == t.TokenType {
		return a.header
	}
	return authorizationHeader(t)
}
