package cli

import (
	"net/url"
	"strings"
	"testing"
)

// TestNoRefreshAdvice: a login without a refresh token says what to add;
// for Google (which answers such a login with no refresh token and no
// error) exactly access_type=offline and prompt=consent.
func TestNoRefreshAdvice(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		scopes []string
		params url.Values
		want   string
	}{
		{"https://accounts.google.com", []string{"openid", "email"}, nil,
			"No refresh token: add access_type=offline and prompt=consent (--param access_type=offline --param prompt=consent); log in again when the access token expires."},
		{"https://accounts.google.com", []string{"openid"}, url.Values{"access_type": {"offline"}},
			"No refresh token: add access_type=offline and prompt=consent"},
		{"https://id.example", []string{"openid"}, nil, "ask for the offline_access scope (--scopes), or, for Google, add access_type=offline and prompt=consent"},
		{"https://id.example", []string{"openid", "offline_access"}, nil, "though offline_access was asked for"},
		{"https://id.example", nil, url.Values{"access_type": {"offline"}}, "No refresh token was issued; log in again when the access token expires."},
	} {
		if got := noRefreshAdvice(tt.issuer, tt.scopes, tt.params); !strings.Contains(got, tt.want) {
			t.Errorf("noRefreshAdvice(%q, %q, %v) = %q, want it to contain %q", tt.issuer, tt.scopes, tt.params, got, tt.want)
		}
	}
}
