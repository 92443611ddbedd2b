package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// alphabet is RFC 3986 §2.3 unreserved: what tokens are made of.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// secretFrom turns fuzz bytes into an 8–64 character URL-safe secret.
func secretFrom(t *testing.T, b []byte) string {
	if len(b) < 8 {
		t.Skip("secret too short")
	}
	if len(b) > 64 {
		b = b[:64]
	}
	s := make([]byte, len(b))
	for i, c := range b {
		s[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(s)
}

// other returns a secret of the same length that differs in every place.
func other(s string) string {
	o := []byte(s)
	for i := range o {
		o[i] = alphabet[(strings.IndexByte(alphabet, o[i])+1)%len(alphabet)]
	}
	return string(o)
}

// checkNoLeak fails if render(secret) shows the secret. A secret that also
// appears when a different secret is planted is part of the fixed text
// (say "redacted" or "Bearer"), which is not a leak.
func checkNoLeak(t *testing.T, secret string, render func(secret string) string) {
	t.Helper()
	out := render(secret)
	if !strings.Contains(out, secret) {
		return
	}
	if strings.Contains(render(other(secret)), secret) {
		t.Skip("secret is part of the fixed text")
	}
	t.Fatalf("secret %q leaked:\n%s", secret, out)
}

var fuzzKeys = []string{
	"access_token", "refresh_token", "code", "code_verifier", "client_secret", "device_code",
	"id_token", "password", "token", "assertion", "client_assertion", "subject_token",
	"X-Api-Key", "my_secret", "Access_Token",
	// API keys, signed URLs, passwords and one-time codes (promise item 10).
	"key", "sig", "signature", "jwt", "pwd", "pass", "X-Amz-Credential", "X-Amz-Signature",
	"X-Goog-Signature", "X-Auth-Key", "X-Access-Key", "Authentication", "X-Signature",
	"X-Vendor-Token", "auth", "credential", "credentials", "otp", "pin", "private_key",
}

func FuzzRedactHeader(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), "Bearer")
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789"), "token")
	f.Add([]byte("~~~~~~~~~"), "")
	f.Add([]byte("Bearer  x y"), "Basic")
	f.Fuzz(func(t *testing.T, raw []byte, scheme string) {
		secret := secretFrom(t, raw)
		checkNoLeak(t, secret, func(s string) string {
			h := http.Header{
				"Authorization":       {scheme + " " + s},
				"Proxy-Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("client:"+s))},
				"Cookie":              {"a=1; sid=" + s},
				"Set-Cookie":          {"sid=" + s + "; Path=/; Secure"},
				"X-Api-Key":           {s},
				"X-Upstream-Token":    {s},
				"Location":            {"http://127.0.0.1:1/cb?state=x&code=" + s},
				"Link":                {"<https://h/x?page=2&access_token=" + s + `>; rel="next"`},
			}
			var b strings.Builder
			if err := Header(h).Write(&b); err != nil {
				t.Fatal(err)
			}
			// The Basic credential must not survive in encoded form either.
			return strings.ReplaceAll(b.String(), base64.StdEncoding.EncodeToString([]byte("client:"+s)), s)
		})
	})
}

func FuzzRedactForm(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), uint8(0), "grant_type=refresh_token", "client_id=cli")
	f.Add([]byte("0123456789abcdef"), uint8(3), "", "")
	f.Add([]byte("secretsecret"), uint8(9), "a=1;b", "x=%zz")
	f.Fuzz(func(t *testing.T, raw []byte, k uint8, before, after string) {
		secret := secretFrom(t, raw)
		key := fuzzKeys[int(k)%len(fuzzKeys)]
		checkNoLeak(t, secret, func(s string) string {
			in := before + "&" + url.QueryEscape(key) + "=" + url.QueryEscape(s) + "&" + after
			out := Form([]byte(in))
			u := &url.URL{Scheme: "https", Host: "h.example", Path: "/p", RawQuery: in}
			return string(out) + "\n" + URL(u)
		})
	})
}

func FuzzRedactJSON(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), uint8(0), uint8(0), true)
	f.Add([]byte("0123456789abcdef0123456789"), uint8(7), uint8(5), false)
	f.Fuzz(func(t *testing.T, raw []byte, k, depth uint8, inArray bool) {
		secret := secretFrom(t, raw)
		key := fuzzKeys[int(k)%len(fuzzKeys)]
		checkNoLeak(t, secret, func(s string) string {
			var v any = map[string]any{"id": 1, key: s, "note": "hi"}
			if inArray {
				v = map[string]any{key: []any{s, map[string]any{"x": s}}}
			}
			for range depth % 8 {
				v = map[string]any{"data": []any{v, 2.5, nil}, "ok": true}
			}
			if depth&8 != 0 {
				// JSON carried inside a JSON string, as an echoed request body.
				inner, _ := json.Marshal(v)
				v = map[string]any{"echo": map[string]any{"body": string(inner)}}
			}
			in, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out := JSON(in)
			if !json.Valid(out) {
				t.Fatalf("JSON(%s) = %s: not valid JSON", in, out)
			}
			return string(out)
		})
	})
}

// FuzzRedactJSONShape feeds arbitrary documents: valid JSON must stay valid,
// and every string or number under a secret name must come out as a marker.
func FuzzRedactJSONShape(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"abc","a":[1,{"refresh_token":2}]}`,
		`[{"tokens":{"x":["y",3]}}]`, `"x"`, `{"a":1}{"code":"z"}`, `{"a":`, `{"id_token":"\u0041"}`,
		` {"password" : "p" , "k":{}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := JSON(in)
		if !json.Valid(in) {
			return // a placeholder, or a JSON sequence redacted in place
		}
		if !json.Valid(out) {
			t.Fatalf("JSON(%s) = %s: not valid JSON", in, out)
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		checkMarked(t, v, false)
	})
}

func checkMarked(t *testing.T, v any, secret bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			checkMarked(t, e, secret || Sensitive(k))
		}
	case []any:
		for _, e := range v {
			checkMarked(t, e, secret)
		}
	case string:
		if secret && !strings.HasPrefix(v, Marker[:len(Marker)-1]) {
			t.Fatalf("secret value %q not redacted", v)
		}
	case json.Number:
		if secret {
			t.Fatalf("secret number %s not redacted", v)
		}
	}
}

func FuzzRedactURL(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), uint8(0), "/path")
	f.Add([]byte("0123456789abcdef"), uint8(2), "")
	f.Fuzz(func(t *testing.T, raw []byte, k uint8, path string) {
		secret := secretFrom(t, raw)
		key := fuzzKeys[int(k)%len(fuzzKeys)]
		checkNoLeak(t, secret, func(s string) string {
			q := url.Values{key: {s}, "page": {"2"}}.Encode()
			u := &url.URL{Scheme: "https", Host: "h.example", Path: path, RawQuery: q, Fragment: key + "=" + s}
			pw := &url.URL{Scheme: "https", User: url.UserPassword("bob", s), Host: "h.example"}
			bare := &url.URL{Scheme: "https", User: url.User(s), Host: "h.example"}
			return URL(u) + "\n" + URL(pw) + "\n" + URL(bare)
		})
	})
}

func FuzzRedactText(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), "error: body was {\"x\":\"%s\"}")
	f.Fuzz(func(t *testing.T, raw []byte, tmpl string) {
		secret := secretFrom(t, raw)
		checkNoLeak(t, secret, func(s string) string {
			in := strings.ReplaceAll(tmpl, "%s", s) + " " + s + " " + url.QueryEscape(s)
			return Text(in, s)
		})
	})
}

// FuzzRedactServerText: a server's error text that quotes a known secret,
// or holds a token-shaped word or control characters, is shown without
// them (promise item 5).
func FuzzRedactServerText(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), "refresh token %s was reused \x1b]0;x\x07")
	f.Add([]byte("0123456789abcdef0123456789"), "see https://as.example/e?t=%s")
	f.Fuzz(func(t *testing.T, raw []byte, tmpl string) {
		secret := secretFrom(t, raw)
		checkNoLeak(t, secret, func(s string) string {
			out := Server(strings.ReplaceAll(tmpl, "%s", s), s)
			if strings.ContainsFunc(out, isControl) {
				t.Fatalf("Server(%q) = %q keeps control characters", tmpl, out)
			}
			return out
		})
	})
}
