package authcode

import (
	"bufio"
	"errors"
	"io"
	"net/url"
	"strings"
)

// bareCode marks a pasted code that came without its state.
const bareCode = "\x00bare"

// maxPaste bounds one pasted line; a redirect URL is far shorter.
const maxPaste = 16 << 10

// pasted is one line read from Options.Paste, parsed.
type pasted struct {
	q   url.Values
	err error
}

// readPaste sends the first non-blank line of r, parsed, to out.
func readPaste(r io.Reader, out chan<- pasted) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxPaste)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		q, err := parsePaste(line)
		out <- pasted{q: q, err: err}
		return
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, bufio.ErrTooLong) {
		err = pasteError("the pasted line is too long to be a redirect URL or a code")
	} else {
		err = pasteError("the input ended before a redirect URL or code was pasted")
	}
	out <- pasted{err: err}
}

// ErrPaste: nothing usable was read from Options.Paste (it is not an
// authorization response, or the input ended first). No token was
// requested. Use errors.Is.
var ErrPaste = errors.New("nothing usable was pasted")

// pasteError is an ErrPaste with its reason. It never quotes what was
// pasted: that may hold a code.
type pasteError string

func (e pasteError) Error() string        { return string(e) + "; no token was requested" }
func (e pasteError) Is(target error) bool { return target == ErrPaste }

var errPaste error = pasteError("what was pasted is not the redirect URL (http://127.0.0.1:…/callback?code=…&state=…), its query, or a code")

// parsePaste reads a pasted authorization response (RFC 6749 §4.1.2): the
// redirect URL, its query, CODE#STATE, or a bare code.
func parsePaste(s string) (url.Values, error) {
	var q url.Values
	switch {
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return nil, errPaste
		}
		q = u.Query()
	case strings.Contains(s, "="):
		var err error
		if q, err = url.ParseQuery(strings.TrimPrefix(s, "?")); err != nil {
			return nil, errPaste
		}
	default:
		code, state, hasState := strings.Cut(s, "#")
		if !codeLike(code) || hasState && !codeLike(state) {
			return nil, errPaste
		}
		q = url.Values{"code": {code}}
		if hasState {
			q.Set("state", state)
		} else {
			q.Set(bareCode, "1")
		}
		return q, nil
	}
	if !q.Has("code") && !q.Has("error") {
		return nil, errPaste
	}
	q.Del(bareCode)
	return q, nil
}

// codeLike reports whether s could be a code or state: visible ASCII
// (RFC 6749 Appendix A.11, VSCHAR), no space.
func codeLike(s string) bool {
	if s == "" || len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
