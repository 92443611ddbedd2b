package cli

import (
	"net/url"
	"strings"
)

// nextLink returns the target of the rel="next" link in the Link header
// values (RFC 8288 §3), resolved against base (§3.2), or "" if there is
// none. Relation types compare case-insensitively and a rel may list
// several space-separated types (§3.3).
func nextLink(base *url.URL, values []string) string {
	for _, v := range values {
		for _, l := range parseLinks(v) {
			for _, rel := range strings.Fields(l.params["rel"]) {
				if !strings.EqualFold(rel, "next") {
					continue
				}
				ref, err := url.Parse(l.target)
				if err != nil {
					return ""
				}
				return base.ResolveReference(ref).String()
			}
		}
	}
	return ""
}

type link struct {
	target string
	params map[string]string // lower-cased names; the first occurrence wins (§3.3)
}

// parseLinks parses one Link field value: a comma-separated list of
// `<target>; name=value; name="quoted"` (RFC 8288 §3). Malformed links are
// skipped.
func parseLinks(s string) []link {
	var links []link
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return links
		}
		if s[0] != '<' {
			// Not a link: skip to the next comma outside quotes.
			s = skipElement(s)
			continue
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return links
		}
		l := link{target: strings.TrimSpace(s[1:end]), params: map[string]string{}}
		s = s[end+1:]
		for {
			s = strings.TrimLeft(s, " \t")
			if s == "" || s[0] != ';' {
				break
			}
			s = strings.TrimLeft(s[1:], " \t")
			i := strings.IndexAny(s, "=;,")
			if i < 0 {
				i = len(s)
			}
			name := strings.ToLower(strings.TrimSpace(s[:i]))
			s = s[i:]
			var val string
			if s != "" && s[0] == '=' {
				val, s = paramValue(strings.TrimLeft(s[1:], " \t"))
			}
			if _, dup := l.params[name]; !dup && name != "" {
				l.params[name] = val
			}
		}
		links = append(links, l)
		s = skipElement(s)
	}
}

// paramValue reads a token or a quoted-string (RFC 9110 §5.6.4).
func paramValue(s string) (val, rest string) {
	if s == "" || s[0] != '"' {
		i := strings.IndexAny(s, ";, \t")
		if i < 0 {
			return s, ""
		}
		return s[:i], s[i:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// skipElement drops the rest of the current list element, up to and
// including the next comma outside a quoted string.
func skipElement(s string) string {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == ',' && !quoted:
			return s[i+1:]
		}
	}
	return ""
}
