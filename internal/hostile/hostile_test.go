package hostile

import (
	"errors"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	long := strings.Repeat("a", MaxClientID+1)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"plain client id", VSCHAR("client_id", "abc-123_~.", MaxClientID)},
		{"user code", Check("user_code", "WDJB-MJHT", MaxUserCode)},
		{"https url", URL("verification_uri", "https://example.com/device?x=1")},
		{"loopback http url", URL("verification_uri", "http://127.0.0.1:8080/device")},
		{"localhost http url", URL("verification_uri", "http://localhost/device")},
	} {
		if tc.err != nil {
			t.Errorf("%s: got %v, want accepted", tc.name, tc.err)
		}
	}
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"escape sequence", "control characters", VSCHAR("client_id", "a\x1b]0;pwned\x07b", MaxClientID)},
		{"newline forging a line", "control characters", Check("user_code", "X\nLogged in to https://real.example", MaxUserCode)},
		{"bidi override", "control characters", Check("user_code", "AB\u202eCD", MaxUserCode)},
		{"C1 CSI", "control characters", Check("user_code", "AB\u009b2J", MaxUserCode)},
		{"huge client id", "1025 bytes long", VSCHAR("client_id", long, MaxClientID)},
		{"non-ASCII client id", "§A.1", VSCHAR("client_id", "clié", MaxClientID)},
		{"invalid UTF-8", "UTF-8", Check("user_code", "a\xffb", MaxUserCode)},
		{"empty", "empty", Check("user_code", "", MaxUserCode)},
		{"long user code", "bytes long", Check("user_code", strings.Repeat("A", 65), MaxUserCode)},
		{"javascript url", "not an absolute http(s) URL", URL("verification_uri", "javascript:alert(1)")},
		{"relative url", "not an absolute http(s) URL", URL("verification_uri", "/device")},
		{"plain http off loopback", "plain http", URL("verification_uri", "http://evil.example/device")},
		{"user info", "user information", URL("verification_uri", "https://real.example@evil.example/")},
		{"file url", "not an absolute", URL("verification_uri", "file:///etc/passwd")},
	} {
		var he *Error
		if !errors.As(tc.err, &he) {
			t.Errorf("%s: got %v, want an *Error", tc.name, tc.err)
			continue
		}
		msg := tc.err.Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: got %q, want it to say %q", tc.name, msg, tc.want)
		}
		if strings.ContainsFunc(msg, unprintable) || len(msg) > 300 {
			t.Errorf("%s: the error itself is not fit to show: %q", tc.name, msg)
		}
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		" alice ":                         "alice",
		"alice\n\x1b[2JLogged in as root": "",
		strings.Repeat("n", MaxName+1):    "",
		"Zoë":                             "Zoë",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
