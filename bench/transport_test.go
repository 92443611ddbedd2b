package bench

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/storekit"
	"golang.org/x/oauth2"
)

// memBase is a trivial in-memory RoundTripper: it answers every request
// with the same response and allocates nothing itself.
type memBase struct{ resp *http.Response }

func (b memBase) RoundTrip(r *http.Request) (*http.Response, error) { return b.resp, nil }

// plainSource is a TokenSource of the caller's own, not a latch.Source.
type plainSource struct{ t *latch.Token }

func (s plainSource) Token(context.Context) (*latch.Token, error) { return s.t, nil }

// BenchmarkRoundTrip measures per-request overhead with a valid token:
// the bare base, latch's Transport (over a Source, and over a TokenSource
// of the caller's own) and x/oauth2's Transport, side by side.
func BenchmarkRoundTrip(b *testing.B) {
	base := memBase{&http.Response{StatusCode: 200, Body: http.NoBody}}
	tok := &latch.Token{AccessToken: "at-0123456789abcdef", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Now().Add(time.Hour), IssuedAt: time.Now(), Issuer: "https://as", ClientID: "cli"}
	st := &storekit.Memory{}
	st.Save(context.Background(), tok.Key(), nil, tok)
	src := &latch.Source{Config: &latch.Config{Issuer: "https://as", ClientID: "cli"}, Store: st, Key: tok.Key()}
	ot := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer", Expiry: tok.Expiry}

	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"base", base},
		{"latch", &latch.Transport{Source: src, Base: base}},
		{"latch-own-source", &latch.Transport{Source: plainSource{tok}, Base: base}},
		{"x-oauth2", &oauth2.Transport{Source: oauth2.ReuseTokenSource(ot, oauth2.StaticTokenSource(ot)), Base: base}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", "https://api.example.com/v2/user", nil)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("User-Agent", "latch-bench")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bc.rt.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}
