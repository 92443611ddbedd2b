package authcode

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// redirectOf opens authURL as a browser on another machine would: it
// follows nothing, and returns where the server sent it (the loopback
// callback it cannot reach).
func redirectOf(ctx context.Context, authURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Header.Get("Location"), nil
}

// pasting returns Options whose OpenURL "pastes" edit(redirect URL) as
// a person would type it into the terminal.
func pasting(t *testing.T, edit func(redirect string) string) Options {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	return Options{
		Paste: pr,
		OpenURL: func(ctx context.Context, authURL string) error {
			loc, err := redirectOf(ctx, authURL)
			if err != nil {
				return err
			}
			go io.WriteString(pw, "\n  "+edit(loc)+"  \n")
			return nil
		},
	}
}

func queryOf(t *testing.T, loc string) url.Values {
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestLoginPaste(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(t *testing.T, loc string) string
	}{
		{"redirect URL", func(t *testing.T, loc string) string { return loc }},
		{"query", func(t *testing.T, loc string) string { return "?" + queryOf(t, loc).Encode() }},
		{"code#state", func(t *testing.T, loc string) string {
			q := queryOf(t, loc)
			return q.Get("code") + "#" + q.Get("state")
		}},
		{"bare code", func(t *testing.T, loc string) string { return queryOf(t, loc).Get("code") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t)
			tok, err := Login(t.Context(), as.config(), pasting(t, func(loc string) string { return tt.edit(t, loc) }))
			if err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("Login = %+v, %v; want the token", tok, err)
			}
			as.mu.Lock()
			form := as.tokenForm
			as.mu.Unlock()
			if form.Get("code") != testCode || form.Get("code_verifier") == "" || !strings.HasPrefix(form.Get("redirect_uri"), "http://127.0.0.1:") {
				t.Errorf("token request %v: want the pasted code with the verifier and the redirect URI", form)
			}
		})
	}
}

func TestLoginPasteRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		issReq bool
		iss    string // sent in the redirect
		edit   func(t *testing.T, loc string) string
		want   string
		is     error
	}{
		{name: "wrong state", edit: func(t *testing.T, loc string) string {
			return strings.Replace(loc, "state=", "state=x", 1)
		}, is: ErrStateMismatch},
		{name: "code#wrong state", edit: func(t *testing.T, loc string) string { return queryOf(t, loc).Get("code") + "#forged" }, is: ErrStateMismatch},
		{name: "garbage", edit: func(*testing.T, string) string { return "I don't know " + testCode }, want: "is not the redirect URL", is: ErrPaste},
		{name: "URL without code", edit: func(*testing.T, string) string { return "http://127.0.0.1:1/callback?x=" + testCode }, want: "is not the redirect URL"},
		{name: "too long", edit: func(*testing.T, string) string { return strings.Repeat("a", maxPaste+1) }, want: "too long"},
		{name: "bare code, iss required", issReq: true, iss: "self", edit: func(t *testing.T, loc string) string { return queryOf(t, loc).Get("code") }, want: "paste the whole URL"},
		{name: "no iss, iss required", issReq: true, edit: func(t *testing.T, loc string) string { return loc }, want: "mix-up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t)
			if tt.iss != "" {
				as.redirect = func(q url.Values) url.Values {
					return url.Values{"code": {testCode}, "state": {q.Get("state")}, "iss": {as.URL}}
				}
			}
			opts := pasting(t, func(loc string) string { return tt.edit(t, loc) })
			opts.IssuerRequired = tt.issReq
			_, err := Login(t.Context(), as.config(), opts)
			if err == nil {
				t.Fatal("Login succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) || tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %v %q", err, tt.is, tt.want)
			}
			if strings.Contains(err.Error(), testCode) {
				t.Errorf("error %q shows the code", err)
			}
			if n := as.tokens.Load(); n != 0 {
				t.Errorf("token calls = %d, want 0", n)
			}
		})
	}
}

// TestLoginPasteOrCallback: with Paste set the loopback listener still
// serves (ssh -L forwards the browser to it); nothing pasted is needed.
func TestLoginPasteOrCallback(t *testing.T) {
	as := newFakeAS(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	var b browser
	tok, err := Login(t.Context(), as.config(), Options{OpenURL: b.open, Paste: pr})
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Login = %+v, %v", tok, err)
	}
}

func TestLoginPasteEOF(t *testing.T) {
	as := newFakeAS(t)
	_, err := Login(t.Context(), as.config(), Options{OpenURL: func(context.Context, string) error { return nil }, Paste: strings.NewReader("\n\n")})
	if !errors.Is(err, ErrPaste) || !strings.Contains(err.Error(), "input ended") {
		t.Fatalf("got %v, want the input ended", err)
	}
}

// TestLoginIssuerRequired: a server that says it sends iss (RFC 9207)
// must send it; the callback without it is refused, with it accepted.
func TestLoginIssuerRequired(t *testing.T) {
	for _, send := range []bool{false, true} {
		as := newFakeAS(t)
		as.redirect = func(q url.Values) url.Values {
			v := url.Values{"code": {testCode}, "state": {q.Get("state")}}
			if send {
				v.Set("iss", as.URL)
			}
			return v
		}
		var b browser
		_, err := Login(t.Context(), as.config(), Options{OpenURL: b.open, IssuerRequired: true})
		if send != (err == nil) || !send && !strings.Contains(err.Error(), "RFC 9207") {
			t.Errorf("iss sent %v: got %v", send, err)
		}
	}
}

func FuzzParsePaste(f *testing.F) {
	f.Add("http://127.0.0.1:8765/callback?code=abc&state=def")
	f.Add("code=abc&state=def")
	f.Add("abc#def")
	f.Add("abc")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parsePaste(s)
		if err != nil {
			if !errors.Is(err, ErrPaste) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !q.Has("code") && !q.Has("error") {
			t.Fatalf("%q parsed to %v without code or error", s, q)
		}
	})
}
