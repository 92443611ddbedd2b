package register

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/latchdev/latch/internal/hostile"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A hostile registration answer: whatever the server answers, a client it
// returns has a client_id of visible ASCII of at most 1 KiB, and no error
// carries a control character to the terminal.
func FuzzRegisterAnswer(f *testing.F) {
	f.Add(201, `{"client_id":"dyn-1"}`)
	f.Add(201, `{"client_id":"\u001b]0;pwned\u0007\u001b[2JLogged in to https://real.example"}`)
	f.Add(201, `{"client_id":"`+strings.Repeat("A", 900<<10)+`"}`)
	f.Add(400, `{"error":"invalid_redirect_uri\u001b[2J","error_description":"line\nforged"}`)
	f.Add(500, "<html>\x1b[31m</html>")
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 599 {
			return
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}
		c, err := Register(t.Context(), hc, "https://as.example/register", Request{ClientName: "latch"})
		if err != nil {
			if s := err.Error(); strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
				t.Fatalf("error holds a control character: %q", s)
			}
			return
		}
		if err := hostile.VSCHAR("client_id", c.ClientID, hostile.MaxClientID); err != nil {
			t.Fatalf("registered client accepted though %v", err)
		}
	})
}

// The refusal names the server and what it answered, cut short.
func TestRegisterRefusesHostileClientID(t *testing.T) {
	for _, id := range []string{"a\x1b]0;x\x07", strings.Repeat("A", 900<<10)} {
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"client_id":` + quote(id) + `}`)), Request: r}, nil
		})}
		_, err := Register(t.Context(), hc, "https://as.example/register", Request{})
		var he *hostile.Error
		if !errors.As(err, &he) || !strings.Contains(err.Error(), "https://as.example/register") || len(err.Error()) > 300 {
			t.Fatalf("got %v, want a short refusal naming the server", err)
		}
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r < 0x20 {
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
