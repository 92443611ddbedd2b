package latch

import (
	"context"

	"golang.org/x/oauth2"
)

// OAuth2 adapts ts to golang.org/x/oauth2's TokenSource, so any
// x/oauth2-based client (oauth2.NewClient, Google API clients, ...) reads
// the same shared, refresh-safe token. The adapter uses ctx for every call.
// x/oauth2 cannot replay a request after a 401; use Transport for that.
func OAuth2(ctx context.Context, ts TokenSource) oauth2.TokenSource {
	return oauth2Source{ctx, ts}
}

type oauth2Source struct {
	ctx context.Context
	ts  TokenSource
}

func (s oauth2Source) Token() (*oauth2.Token, error) {
	t, err := s.ts.Token(s.ctx)
	if err != nil {
		return nil, err
	}
	return toOAuth2(t), nil
}

// toOAuth2 returns t as an x/oauth2 token (RFC 6749 §5.1). The refresh
// token is left out on purpose: x/oauth2 would redeem it on its own,
// outside latch's lock, and a rotating server would revoke the family.
func toOAuth2(t *Token) *oauth2.Token {
	return &oauth2.Token{
		AccessToken: t.AccessToken,
		TokenType:   t.TokenType,
		Expiry:      t.Expiry,
	}
}
