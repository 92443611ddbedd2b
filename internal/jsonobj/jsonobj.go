// Package jsonobj tells whether a server's answer is meant as a JSON
// object, before it is decoded: encoding/json accepts "null" into a
// struct without error, and an answer that is not an object gets a
// clearer message than the decoder's.
package jsonobj

// Looks reports whether b, after leading white space (RFC 8259 §2),
// starts a JSON object.
func Looks(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
