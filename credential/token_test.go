package credential

import (
	"testing"
	"time"
)

// A token is fresh until its early expiry: skew before its expiry, the
// margin at most a quarter of its lifetime (kubectl is given this time).
func TestEarlyExpiry(t *testing.T) {
	now := time.Now()
	long := &Token{AccessToken: "a", Expiry: now.Add(time.Hour), IssuedAt: now}
	short := &Token{AccessToken: "a", Expiry: now.Add(time.Minute), IssuedAt: now}
	unknown := &Token{AccessToken: "a"}
	for _, c := range []struct {
		name string
		tok  *Token
		want time.Time
	}{
		{"1h token", long, long.Expiry.Add(-DefaultSkew)},
		{"1m token", short, short.Expiry.Add(-15 * time.Second)},
		{"no expiry", unknown, time.Time{}},
	} {
		got := c.tok.EarlyExpiry(DefaultSkew)
		if !got.Equal(c.want) {
			t.Errorf("%s: EarlyExpiry = %v, want %v", c.name, got, c.want)
		}
		if got.IsZero() {
			if !c.tok.Fresh(now.Add(1000*time.Hour), DefaultSkew) {
				t.Errorf("%s: a token with no expiry must stay fresh", c.name)
			}
			continue
		}
		if !c.tok.Fresh(got.Add(-time.Nanosecond), DefaultSkew) || c.tok.Fresh(got, DefaultSkew) {
			t.Errorf("%s: Fresh must end exactly at EarlyExpiry %v", c.name, got)
		}
	}
	if (&Token{}).Fresh(now, DefaultSkew) || (*Token)(nil).Fresh(now, DefaultSkew) {
		t.Error("a token without an access token is never fresh")
	}
}
