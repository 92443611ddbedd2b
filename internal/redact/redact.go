// Package redact is the one place in latch that knows what a secret looks
// like. It works on structure — header names, form keys, JSON field names,
// query parameters — never on regular expressions over text, so that what it
// returns stays well-formed (a lesson from bk #943, where regex redaction
// garbled JSON in debug output).
//
// A redacted value becomes "[redacted]", or "[redacted fp:1a2b3c4d]" when the
// value is long enough that its fingerprint (the first 4 bytes of its
// SHA-256, as storekit.Fingerprint) cannot be brute-forced; that lets a person
// correlate tokens across requests without seeing them. Passwords never get
// a fingerprint.
package redact

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchdev/latch/storekit"
)

// Marker is the text that stands in for a secret.
const Marker = "[redacted]"

// minFingerprintLen is the shortest value that gets a fingerprint. Shorter
// values (a 6-digit code, a PIN) would be trivial to recover from 32 bits of
// their hash.
const minFingerprintLen = 16

// secretNames are field names that carry secrets in OAuth 2.0 messages:
// RFC 6749 §4.1, §5.1, §6; RFC 7636 §4.5; RFC 8628 §3.4; RFC 7009 §2.1;
// RFC 7521 §4.2; RFC 8693 §2.1; OIDC Core §3.1.3.3.
var secretNames = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "token": true,
	"code": true, "code_verifier": true, "device_code": true,
	"client_secret": true, "password": true, "passwd": true,
	"assertion": true, "client_assertion": true,
	"subject_token": true, "actor_token": true,
	"authorization": true, "proxy_authorization": true,
	"cookie": true, "set_cookie": true,
	// Common names outside OAuth: API keys and signed URLs (S3 and GCS
	// presigned URLs, HMAC-signed requests), passwords, one-time codes.
	"key": true, "sig": true, "signature": true, "jwt": true,
	"pwd": true, "pass": true, "otp": true, "pin": true,
	"auth": true, "authentication": true, "credential": true, "credentials": true,
}

// secretParts mark a name as secret wherever they appear in it.
var secretParts = []string{"token", "secret", "password", "passwd", "api_key", "apikey", "private_key", "cookie", "session",
	"signature", "credential"}

// secretSuffixes mark a name as secret when it ends in them, such as
// X-Auth-Key, X-Access-Key or access_key.
var secretSuffixes = []string{"_key"}

// publicNames are never secret, though they match a part or suffix.
var publicNames = map[string]bool{"public_key": true, "key_id": true}

// publicSuffixes exempt names that merely talk about tokens, such as
// token_type (RFC 6749 §7.1), token_type_hint (RFC 7009 §2.1),
// token_endpoint and *_supported (RFC 8414 §2).
var publicSuffixes = []string{"_type", "_type_hint", "_endpoint", "_supported", "_expires_in", "_expires_at", "_method", "_methods"}

// Sensitive reports whether a header, form or JSON field called name carries
// a secret. Case, '-' and '_' do not matter.
func Sensitive(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	if secretNames[n] {
		return true
	}
	if publicNames[n] {
		return false
	}
	for _, s := range publicSuffixes {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	for _, x := range secretSuffixes {
		if strings.HasSuffix(n, x) {
			return true
		}
	}
	return false
}

// Fingerprint returns a short, non-reversible tag for a secret, so that a
// person can tell two secrets apart without seeing either; "" for "".
// It is storekit.Fingerprint, which the small helpers link without this
// package's HTTP dependencies.
func Fingerprint(secret string) string { return storekit.Fingerprint(secret) }

// mark returns what stands in for value, a secret found under name.
func mark(name, value string) string {
	if len(value) < minFingerprintLen || strings.Contains(strings.ToLower(name), "passw") {
		return Marker
	}
	return "[redacted fp:" + Fingerprint(value) + "]"
}

// Header returns a copy of h with the values of secret-bearing headers
// replaced: Authorization and Proxy-Authorization keep their scheme
// (RFC 9110 §11.4), cookies keep their names (RFC 6265 §4), and URLs in
// Location, Content-Location, Referer and Link (RFC 8288) lose their secret
// query parameters. h is not modified.
func Header(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = headerValue(k, v)
		}
		out[k] = c
	}
	return out
}

func headerValue(name, v string) string {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization":
		return authorization(v)
	case "Cookie":
		return cookie(v)
	case "Set-Cookie":
		return setCookie(v)
	case "Location", "Content-Location", "Referer":
		return urlString(v)
	case "Link":
		return link(v)
	}
	if Sensitive(name) {
		return mark(name, v)
	}
	return v
}

// authorization keeps the auth-scheme (RFC 9110 §11.4) and hides the rest.
func authorization(v string) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !isScheme(scheme) {
		return mark("authorization", v)
	}
	cred = strings.TrimSpace(cred)
	if strings.EqualFold(scheme, "basic") {
		return scheme + " " + Marker // RFC 7617: id:password, never fingerprinted
	}
	return scheme + " " + mark("authorization", cred)
}

func isScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cookie keeps cookie names and hides values (RFC 6265 §4.2).
func cookie(v string) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		parts[i] = cookiePair(p)
	}
	return strings.Join(parts, ";")
}

func cookiePair(p string) string {
	lead := p[:len(p)-len(strings.TrimLeft(p, " "))]
	name, _, ok := strings.Cut(strings.TrimSpace(p), "=")
	if !ok || !isName(name) {
		return lead + Marker
	}
	return lead + name + "=" + Marker
}

// cookieAttrs are Set-Cookie attributes (RFC 6265 §4.1.1), which are safe.
var cookieAttrs = map[string]bool{
	"expires": true, "max-age": true, "domain": true, "path": true,
	"secure": true, "httponly": true, "samesite": true, "partitioned": true,
}

// setCookie hides the cookie value and keeps known attributes.
func setCookie(v string) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if i == 0 || !cookieAttrs[strings.ToLower(name)] {
			parts[i] = cookiePair(p)
		}
	}
	return strings.Join(parts, ";")
}

// link redacts each URI-Reference in a Link header (RFC 8288 §3).
func link(v string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			b.WriteString(v[:i])
			b.WriteString(Marker)
			return b.String()
		}
		b.WriteString(v[:i+1])
		b.WriteString(urlString(v[i+1 : i+j]))
		b.WriteByte('>')
		v = v[i+j+1:]
	}
}

func urlString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return Marker
	}
	return URL(u)
}

// URL returns u as a string with secret query parameters and fragment
// parameters (RFC 6749 §4.2.2 returns tokens in the fragment) redacted, and
// the userinfo password hidden. A username without a password is hidden too,
// since https://TOKEN@host is a common way to carry a token. The path is
// kept as is. u is not modified.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "redacted")
		} else {
			c.User = url.User("redacted")
		}
	}
	c.RawQuery = string(Form([]byte(c.RawQuery)))
	frag := c.EscapedFragment()
	c.Fragment, c.RawFragment = "", ""
	s := c.String()
	if frag != "" {
		s += "#" + string(Form([]byte(frag)))
	}
	return s
}

// Form redacts an application/x-www-form-urlencoded body or query string
// (RFC 6749 Appendix B): the values of secret keys are replaced and every
// other pair is kept byte for byte, in order. Both '&' and ';' separate
// pairs. A key that does not look like a field name (say, a JSON document
// sent with the wrong content type) is replaced whole.
func Form(body []byte) []byte {
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		i := 0
		for i < len(body) && body[i] != '&' && body[i] != ';' {
			i++
		}
		out = append(out, formPair(body[:i])...)
		if i < len(body) {
			out = append(out, body[i])
			i++
		}
		body = body[i:]
	}
	return out
}

func formPair(p []byte) []byte {
	k, v, hasValue := strings.Cut(string(p), "=")
	key, err := url.QueryUnescape(k)
	if err != nil || !isName(key) {
		return []byte(Marker)
	}
	if !hasValue || !Sensitive(key) {
		return p
	}
	val, err := url.QueryUnescape(v)
	if err != nil {
		val = v
	}
	if val == "" {
		return p
	}
	return []byte(k + "=" + strings.ReplaceAll(mark(key, val), " ", "+"))
}

// isName reports whether s looks like a field name: empty, or up to 128
// letters, digits and -_.:[] (for keys such as user[name]).
func isName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.ContainsRune("-_.:[]", c)) {
			return false
		}
	}
	return true
}

// Text replaces every occurrence of the given secrets in s, including their
// URL-encoded and JSON-escaped forms. It is the last line of defence for
// callers that hold the secret values and must show text that may quote
// them, such as an error carrying a response body. Empty secrets are ignored.
func Text(s string, secrets ...string) string {
	type pair struct{ old, new string }
	var pairs []pair
	seen := map[string]bool{}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		m := mark("", sec)
		js, _ := json.Marshal(sec)
		for _, v := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), string(js[1 : len(js)-1])} {
			if !seen[v] {
				seen[v] = true
				pairs = append(pairs, pair{v, m})
			}
		}
	}
	if len(pairs) == 0 {
		return s
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i].old) > len(pairs[j].old) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.old, p.new)
	}
	return strings.NewReplacer(args...).Replace(s)
}

// maxServerText is the most of one server-supplied string that is shown.
const maxServerText = 500

// Server makes a string a server supplied, such as an OAuth error_description
// or error_uri (RFC 6749 §5.2), fit to show: the given secrets are replaced
// as by Text, so are token-shaped words (see Tokens), control characters
// (C0, DEL, C1: terminal escape sequences) are escaped as \xNN or \u00NN,
// and it is cut to 500 bytes.
func Server(s string, secrets ...string) string {
	s = Tokens(Text(s, secrets...))
	if len(s) > maxServerText {
		s = strings.ToValidUTF8(s[:maxServerText], "") + "…"
	}
	return Control(s)
}

// Control escapes control characters in s (C0 but tab and newline, DEL,
// and the C1 range), so that text from elsewhere cannot drive a terminal.
func Control(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError
}

// minTokenWord is the shortest word Tokens treats as a token.
const minTokenWord = 24

// Tokens replaces token-shaped words in free text: runs of at least 24
// characters of the base64, base64url and JWT alphabets (RFC 4648 §4, §5;
// RFC 7519) with both letters and digits. Prose, URLs (split at ':' and
// '/') and field names are kept.
func Tokens(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		w := s[i:j]
		if len(w) >= minTokenWord && strings.ContainsAny(w, "0123456789") && strings.ContainsFunc(w, unicode.IsLetter) {
			b.WriteString(mark("", w))
		} else {
			b.WriteString(w)
		}
		i = j
	}
	return b.String()
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+=", c) >= 0 || c == '_'
}

// Secrets returns the secret values a form or JSON body carries under
// secret names, so that a caller can hide them wherever else they appear
// (with Text), such as in a server's answer that quotes them.
func Secrets(contentType string, body []byte) []string {
	var out []string
	switch mt := mediaType(contentType); {
	case mt == "application/x-www-form-urlencoded":
		v, _ := url.ParseQuery(string(body))
		for k, vs := range v {
			if Sensitive(k) {
				out = append(out, vs...)
			}
		}
	case isJSON(mt) || json.Valid(body):
		var doc any
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if dec.Decode(&doc) == nil {
			out = jsonSecrets(doc, false, out)
		}
	}
	return out
}

func jsonSecrets(v any, secret bool, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out = jsonSecrets(e, secret || Sensitive(k), out)
		}
	case []any:
		for _, e := range x {
			out = jsonSecrets(e, secret, out)
		}
	case string:
		if secret {
			out = append(out, x)
		}
	case json.Number:
		if secret {
			out = append(out, string(x))
		}
	}
	return out
}

// storeQueryKeys are the query parameters of a store URL known to hold no
// secret; StoreURL shows only these.
var storeQueryKeys = map[string]bool{
	"sslmode": true, "connect_timeout": true, "application_name": true, "target_session_attrs": true,
	"search_path": true, "db": true, "protocol": true, "dial_timeout": true, "read_timeout": true,
	"write_timeout": true, "pool_size": true, "client_name": true,
}

// StoreURL shows a credential store's connection URL (postgres://,
// redis://): scheme, user, host, port and path, and only the query
// parameters known to be harmless; a password anywhere (the userinfo,
// password=, sslpassword=, PASSWORD=) is never shown (LESSONS 28). A URL
// that does not parse is not echoed at all: kind names it instead.
func StoreURL(raw, kind string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return kind + " (connection string hidden)"
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil && u.User.Username() != "" {
		c.User = url.User(u.User.Username())
	}
	q := url.Values{}
	for k, vs := range u.Query() {
		if storeQueryKeys[k] {
			q[k] = vs
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}
