package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// JSON redacts a JSON document (RFC 8259): every string or number under a
// secret field name, at any depth and inside any array or object under
// such a name, is replaced by a JSON string marker. Everything else is kept
// byte for byte — key order, spacing and escapes — so the result is valid
// JSON whenever body is.
//
// A body that is not valid JSON is not shown at all, since it cannot be
// redacted by structure and may still hold a secret; JSON returns a
// placeholder such as "[invalid JSON body, 123 bytes, redacted]" instead.
func JSON(body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	out, err := spliceJSON(body)
	if err != nil {
		return placeholder("invalid JSON", len(body))
	}
	return out
}

// Body redacts an HTTP message body by its Content-Type (RFC 9110 §8.3):
// form bodies with [Form], JSON and +json (RFC 6839 §3.1) bodies with
// [JSON]. Any other body is shown only if it is in fact valid JSON (servers
// mislabel JSON as text/plain); otherwise, since nothing is known of its
// structure, it is replaced by a placeholder naming its type and size.
func Body(contentType string, body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	mt := mediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return Form(body)
	case isJSON(mt):
		return JSON(body)
	}
	if out, err := spliceJSON(body); err == nil {
		return out
	}
	if mt == "" {
		mt = "untyped"
	}
	return placeholder(mt, len(body))
}

// BodyPrefix is like [Body] for the first bytes of a body whose rest is not
// at hand. For JSON it returns the redacted document up to the last complete
// token, so a secret cut in half is never shown; for a form, every pair seen.
// The caller should mark the result as truncated.
func BodyPrefix(contentType string, prefix []byte) []byte {
	if len(prefix) == 0 {
		return prefix
	}
	mt := mediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return Form(prefix)
	case isJSON(mt):
		out, _ := spliceJSON(prefix)
		return out
	}
	if mt == "" {
		mt = "untyped"
	}
	return placeholder(mt, len(prefix))
}

func placeholder(kind string, n int) []byte {
	return []byte(fmt.Sprintf("[%s body, %d bytes, redacted]", kind, n))
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt
}

func isJSON(mt string) bool {
	switch mt {
	case "application/json", "text/json", "application/x-ndjson", "application/jsonl":
		return true
	}
	return strings.HasSuffix(mt, "+json")
}

// errTruncated reports a JSON document that ends inside a value.
var errTruncated = errors.New("truncated JSON")

// frame is one open object or array while walking a JSON document.
type frame struct {
	object  bool
	wantKey bool   // object: the next string is a key
	key     string // object: the current key; array: the key it sits under
	secret  bool   // everything inside is secret
}

// spliceJSON walks body with a token decoder and replaces each secret scalar
// in place. It returns the redacted bytes and an error if body is not a
// complete, valid JSON text (or sequence of texts); on error the bytes run
// to the end of the last complete token, so no partial value is included.
func spliceJSON(body []byte) (out []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers come back as json.Number, so secret numbers are caught
	var sp splicer
	last := 0 // input offset after the last complete token
	out = make([]byte, 0, len(body))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(sp.stack) != 0 || sp.values == 0 {
				return out, errTruncated
			}
			return append(out, body[last:]...), nil
		}
		if err != nil {
			return out, err
		}
		end := int(dec.InputOffset())
		if repl, ok := sp.next(tok); ok {
			start := last // the token itself starts after separators
			for start < end && strings.IndexByte(" \t\r\n,:", body[start]) >= 0 {
				start++
			}
			out = append(append(out, body[last:start]...), repl...)
		} else {
			out = append(out, body[last:end]...)
		}
		last = end
	}
}

// splicer is spliceJSON's place in the document.
type splicer struct {
	stack  []frame
	values int // complete top-level values
}

// next moves past tok and returns what replaces it, when it is a secret
// scalar or a string holding JSON with secrets.
func (sp *splicer) next(tok json.Token) ([]byte, bool) {
	var value string
	isString := false
	switch t := tok.(type) {
	case json.Delim:
		sp.delim(t)
		return nil, false
	case string:
		if n := len(sp.stack); n > 0 && sp.stack[n-1].object && sp.stack[n-1].wantKey {
			sp.stack[n-1].key, sp.stack[n-1].wantKey = t, false
			return nil, false
		}
		value, isString = t, true
	case json.Number:
		value = string(t)
	default: // bool, nil: nothing to hide
		sp.done()
		return nil, false
	}
	key, secret := sp.secretHere()
	sp.done()
	if secret {
		return strconv.AppendQuote(nil, mark(key, value)), true
	}
	if isString {
		if inner, ok := nestedJSON(value); ok {
			q, _ := json.Marshal(inner)
			return q, true
		}
	}
	return nil, false
}

func (sp *splicer) delim(t json.Delim) {
	switch t {
	case '{', '[':
		key, secret := sp.secretHere()
		if len(sp.stack) > 0 && sp.stack[len(sp.stack)-1].object {
			sp.stack[len(sp.stack)-1].wantKey = true // after the container
		}
		sp.stack = append(sp.stack, frame{object: t == '{', wantKey: t == '{', key: key, secret: secret})
	default:
		sp.stack = sp.stack[:len(sp.stack)-1]
		if len(sp.stack) == 0 {
			sp.values++
		}
	}
}

// secretHere returns the key the next value sits under, and whether it
// is secret.
func (sp *splicer) secretHere() (string, bool) {
	if len(sp.stack) == 0 {
		return "", false
	}
	top := sp.stack[len(sp.stack)-1]
	return top.key, top.secret || top.object && Sensitive(top.key)
}

// done records that a value ended.
func (sp *splicer) done() {
	if len(sp.stack) == 0 {
		sp.values++
	} else if top := &sp.stack[len(sp.stack)-1]; top.object {
		top.wantKey = true
	}
}

// nestedJSON redacts a JSON document carried inside a JSON string, such as
// an echoed request body. It reports false when s is not one or nothing in
// it was secret.
func nestedJSON(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 2 || (t[0] != '{' && t[0] != '[') {
		return "", false
	}
	out, err := spliceJSON([]byte(s))
	if err != nil {
		// Not JSON after all, or cut short: show nothing of it.
		return Marker, true
	}
	if string(out) == s {
		return "", false
	}
	return string(out), true
}
