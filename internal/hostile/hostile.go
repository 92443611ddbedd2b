// Package hostile checks values a server chose before latch prints or
// stores them: a registered client_id, a device grant's user code and
// verification URIs, an account name from an ID token or userinfo. Such a
// value is hostile until checked (LESSONS 25): an escape sequence in it
// drives the terminal, a newline forges a line, a huge one fills stderr and
// the config file, a javascript: URL is printed as the place to log in.
//
// Every check goes through Check, the one rule; the others add what their
// field's specification requires.
package hostile

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchdev/latch/internal/redact"
)

// Limits for the fields latch checks.
const (
	MaxClientID = 1 << 10 // RFC 6749 sets none; 1 KiB is far above any real one
	MaxUserCode = 64      // RFC 8628 §6.1: short enough to type
	MaxURL      = 2 << 10
	MaxName     = 200
)

// Error says which server-chosen value was refused, and why. Value is the
// value made fit to show (escaped and cut short), never the raw one.
type Error struct {
	What   string // e.g. "client_id"
	Value  string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("the server's %s %q %s", e.What, e.Value, e.Reason)
}

func refuse(what, s, reason string) *Error {
	if len(s) > 60 {
		s = strings.ToValidUTF8(s[:60], "") + "…"
	}
	return &Error{What: what, Value: redact.Server(s), Reason: reason}
}

// Check reports whether s is fit to print on one line and store: valid
// UTF-8, not empty, at most max bytes, and free of control and format
// characters (C0, DEL, C1, and Unicode Cf such as the bidi overrides that
// reorder what a terminal shows). It returns an *Error when it is not.
func Check(what, s string, max int) error {
	switch {
	case s == "":
		return refuse(what, s, "is empty")
	case len(s) > max:
		return refuse(what, s, fmt.Sprintf("is %d bytes long (at most %d)", len(s), max))
	case !utf8.ValidString(s):
		return refuse(what, s, "is not valid UTF-8")
	case strings.ContainsFunc(s, unprintable):
		return refuse(what, s, "holds control characters")
	}
	return nil
}

func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// VSCHAR is Check, and s must be made of RFC 6749 Appendix A's VSCHAR
// (%x20-7E), as client_id (§A.1) is.
func VSCHAR(what, s string, max int) error {
	if err := Check(what, s, max); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return refuse(what, s, "holds characters outside RFC 6749 §A.1 (visible ASCII)")
		}
	}
	return nil
}

// URL is Check, and s must be an absolute http or https URL with a host,
// https unless the host is loopback (RFC 8252 §8.3), without user
// information: a URL a person may be told to open.
func URL(what, s string) error {
	if err := Check(what, s, MaxURL); err != nil {
		return err
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return refuse(what, s, "is not a valid URL")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "" || u.Hostname() == "":
		return refuse(what, s, "is not an absolute http(s) URL")
	case u.User != nil:
		return refuse(what, s, "carries user information")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return refuse(what, s, "is plain http off loopback (use https)")
	case strings.ContainsRune(s, ' '):
		return refuse(what, s, "holds a space")
	}
	return nil
}

// Name returns s made fit to show as an account name: trimmed, and "" when
// Check refuses it (a name is for display only, so a bad one is dropped,
// never shown escaped as if it were someone's name).
func Name(s string) string {
	s = strings.TrimSpace(s)
	if Check("name", s, MaxName) != nil {
		return ""
	}
	return s
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
