// Package gitcred speaks git's credential helper protocol
// (git-credential(1), gitcredentials(7)) for latch: it reads git's
// request, decides whether it is for the bound server, and writes the
// answer for an access token.
package gitcred

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch/endpoint"
	"github.com/latchdev/latch/internal/app/fastcred"
)

// MaxInput bounds what a helper reads from stdin.
const MaxInput = fastcred.MaxInput

// Request is git's key=value lines, up to a blank line or EOF.
type Request struct {
	attrs map[string][]string
}

// ReadRequest reads a request from r (nil: an empty request).
func ReadRequest(r io.Reader) (*Request, error) {
	in := &Request{attrs: map[string][]string{}}
	if r == nil {
		return in, nil
	}
	sc := bufio.NewScanner(io.LimitReader(r, MaxInput))
	sc.Buffer(make([]byte, 0, 4096), MaxInput)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("credential input: a line without '=' (git-credential(1) wants key=value)")
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("credential input: %s holds a NUL byte", k)
		}
		in.attrs[k] = append(in.attrs[k], v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credential input: %w", err)
	}
	return in, nil
}

// Get returns the last value of key, as git does for single-valued keys.
func (in *Request) Get(key string) string {
	vs := in.attrs[key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// Has reports whether key has value among its values.
func (in *Request) Has(key, value string) bool {
	for _, v := range in.attrs[key] {
		if v == value {
			return true
		}
	}
	return false
}

// Action is what a helper does with a request (Route).
type Action int

const (
	Ignore  Action = iota // store: latch keeps its own tokens
	NotOurs               // for another server: answer nothing, git asks its other helpers
	Erase                 // the server refused the token: mark it rejected
	Answer                // answer with a valid token
)

// Route is the one decision both git helpers make, git-credential-latch's
// fast path and `latch credential git`: what to do with op and req for
// bound, the server the helper answers for (its --url, else the API URL).
// An unknown op, or a bound a token may not be sent to (https, or http
// on loopback), is an error.
func Route(op string, req *Request, bound string) (Action, error) {
	if err := CheckOp(op); err != nil {
		return Ignore, err
	}
	if op == "store" {
		return Ignore, nil
	}
	if err := endpoint.CheckURL(bound); err != nil {
		return Ignore, err
	}
	if !req.For(bound) {
		return NotOurs, nil
	}
	if op == "erase" {
		return Erase, nil
	}
	return Answer, nil
}

// CheckOp says whether op is one of git's: get, store or erase.
func CheckOp(op string) error {
	switch op {
	case "get", "store", "erase":
		return nil
	}
	return fmt.Errorf("unknown operation %q: want get, store or erase", op)
}

// For reports whether the request is for the origin of bound.
func (in *Request) For(bound string) bool {
	return SameOrigin(bound, in.Get("protocol"), in.Get("host"))
}

// Erased returns the secret an erase request reports as rejected.
func (in *Request) Erased() string {
	if in.Get("authtype") != "" {
		return in.Get("credential")
	}
	return in.Get("password")
}

// Answer is the answer to a get for accessToken: username and password
// with password_expiry_utc, or, when git offers capability[]=authtype
// (git 2.46 and later), authtype=Bearer and credential, ephemeral.
func (in *Request) Answer(accessToken string, expiry time.Time, username string) (string, error) {
	if !SafeValue(accessToken) {
		return "", errors.New("the access token cannot be written as a git credential")
	}
	var b strings.Builder
	if in.Has("capability[]", "authtype") {
		b.WriteString("capability[]=authtype\nauthtype=Bearer\ncredential=" + accessToken + "\nephemeral=1\n")
	} else {
		if u := in.Get("username"); u != "" && SafeValue(u) {
			username = u
		}
		b.WriteString("username=" + username + "\npassword=" + accessToken + "\n")
	}
	if !expiry.IsZero() {
		b.WriteString("password_expiry_utc=" + strconv.FormatInt(expiry.Unix(), 10) + "\n")
	}
	return b.String(), nil
}

// SafeValue reports whether v can be written as a key=value line.
func SafeValue(v string) bool { return !strings.ContainsAny(v, "\n\r\x00") }

// SameOrigin reports whether git's protocol and host (host[:port]) are
// the origin of bound.
func SameOrigin(bound, protocol, host string) bool {
	u, err := url.Parse(bound)
	if err != nil || protocol == "" || host == "" {
		return false
	}
	want := u.Host
	switch {
	case u.Scheme == "https" && u.Port() == "443", u.Scheme == "http" && u.Port() == "80":
		want = u.Hostname()
	}
	h := strings.ToLower(host)
	if (protocol == "https" && strings.HasSuffix(h, ":443")) || (protocol == "http" && strings.HasSuffix(h, ":80")) {
		h = h[:strings.LastIndexByte(h, ':')]
	}
	return strings.EqualFold(u.Scheme, protocol) && strings.EqualFold(want, h)
}
