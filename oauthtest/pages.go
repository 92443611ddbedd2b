package oauthtest

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

const devicePath = "/device"

// formHeader marks the approve pages, so Browser can click "Approve".
const formHeader = "X-Oauthtest-Form"

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>latch dev server</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>latch dev server</h1>
{{if .Message}}<p><strong>{{.Message}}</strong></p>{{end}}
{{if .Login}}
<p>Client <code>{{.ClientID}}</code> asks to act as <code>{{.User}}</code>
with scope <code>{{.Scopes}}</code> and will return to <code>{{.Redirect}}</code>.</p>
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<button name="action" value="approve">Approve</button>
<button name="action" value="deny">Deny</button>
</form>
{{end}}
{{if .Device}}
<p>Enter the code shown on your device to let it act as <code>{{.User}}</code>.</p>
<form method="post" action="/device">
<input name="user_code" value="{{.UserCode}}" autocomplete="off" autofocus>
<button name="action" value="approve">Approve</button>
<button name="action" value="deny">Deny</button>
</form>
{{end}}
</body></html>
`))

type pageData struct {
	Message  string
	Login    bool
	Device   bool
	ID       string
	ClientID string
	User     string
	Scopes   string
	Redirect string
	UserCode string
}

func (s *Server) page(w http.ResponseWriter, status int, d pageData) {
	d.User = s.opts.User
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusOK && (d.Login || d.Device) {
		w.Header().Set(formHeader, "approve")
	}
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

// login is the user-facing step of RFC 6749 §4.1.1: zitadel redirects here
// with the auth request id; approval continues to zitadel's callback, which
// issues the code; denial returns error=access_denied (RFC 6749 §4.1.2.1).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	id := r.FormValue("id")
	ar, ok := s.store.authRequest(id)
	if !ok {
		s.page(w, http.StatusBadRequest, pageData{Message: "Unknown or finished authorization request."})
		return
	}
	action := ""
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if s.opts.AutoApprove {
			action = "approve"
		}
	case http.MethodPost:
		action = r.PostFormValue("action")
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch action {
	case "":
		s.page(w, http.StatusOK, pageData{Login: true, ID: ar.id, ClientID: ar.clientID,
			Scopes: strings.Join(ar.scopes, " "), Redirect: redirectOrigin(ar.redirectURI)})
	case "approve":
		if err := s.store.approveAuthRequest(id); err != nil {
			s.page(w, http.StatusBadRequest, pageData{Message: "Unknown or finished authorization request."})
			return
		}
		callback := s.provider.AuthorizationEndpoint().Relative() + "/callback?id=" + url.QueryEscape(id)
		http.Redirect(w, r, callback, http.StatusSeeOther)
	case "deny":
		ar, err := s.store.denyAuthRequest(id)
		if err != nil {
			s.page(w, http.StatusBadRequest, pageData{Message: "Unknown or finished authorization request."})
			return
		}
		u, err := url.Parse(ar.redirectURI)
		if err != nil {
			s.page(w, http.StatusBadRequest, pageData{Message: "Bad redirect URI."})
			return
		}
		q := u.Query()
		q.Set("error", "access_denied")
		q.Set("error_description", "The user denied the request.")
		if ar.state != "" {
			q.Set("state", ar.state)
		}
		if qk := s.quirks(); qk.sendsIss() {
			q.Set("iss", s.issuer(qk))
		}
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
	default:
		s.page(w, http.StatusBadRequest, pageData{Message: "Unknown action."})
	}
}

func redirectOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// devicePage is the verification page of RFC 8628 §3.3: the person enters
// the user code and approves or denies.
func (s *Server) devicePage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	code := strings.TrimSpace(r.FormValue("user_code"))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.page(w, http.StatusOK, pageData{Device: true, UserCode: code})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	action := r.PostFormValue("action")
	if action != "approve" && action != "deny" {
		s.page(w, http.StatusBadRequest, pageData{Device: true, UserCode: code, Message: "Unknown action."})
		return
	}
	if err := s.store.decideDevice(code, action == "approve"); err != nil {
		msg := "Unknown code. Check it and try again."
		switch {
		case errors.Is(err, errDeviceFinished):
			msg = "This code was already used."
		case errors.Is(err, errDeviceExpired):
			msg = "This code has expired. Start again on your device."
		}
		s.page(w, http.StatusBadRequest, pageData{Device: true, UserCode: code, Message: msg})
		return
	}
	if action == "approve" {
		s.page(w, http.StatusOK, pageData{Message: "Device approved. You can return to your terminal."})
		return
	}
	s.page(w, http.StatusOK, pageData{Message: "Device denied."})
}

// BrowserError is a page of the browser part of a login (RFC 6749 §4.1.1,
// RFC 8628 §3.3) that answered with a non-2xx status.
type BrowserError struct {
	URL    string // scheme, host and path only: queries may hold codes
	Status int
}

func (e *BrowserError) Error() string {
	return fmt.Sprintf("browser: %s answered %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Browser returns an HTTP "browser" for tests, with the OpenURL shape: it
// GETs url with a cookie jar and follows redirects, including to the
// client's loopback callback (RFC 8252 §7.3). When it lands on this
// server's approve page (login or device verification with a user_code) it
// clicks Approve, as a person would. It returns a *BrowserError when the
// final page is not 2xx. With AutoApprove an authorize URL completes a login
// without any page.
func (s *Server) Browser() func(ctx context.Context, url string) error {
	return func(ctx context.Context, rawURL string) error { return browser(ctx, rawURL, s.owns) }
}

// Browse is Browser for a dev server in another process, such as one
// started by `latch dev server`: it clicks Approve on any page that a dev
// server marks as its approve page. Harnesses name it as $BROWSER.
func Browse(ctx context.Context, rawURL string) error {
	return browser(ctx, rawURL, func(*url.URL) bool { return true })
}

// RedirectedTo is Browse on a machine that cannot reach the client's
// loopback listener (the browser of an SSH user): it approves, stops at
// the redirect to the client and returns its URL, the one the person
// copies from the address bar to paste into the terminal.
func RedirectedTo(ctx context.Context, rawURL string) (string, error) {
	var to string
	err := browserUntil(ctx, rawURL, func(*url.URL) bool { return true }, func(u *url.URL) bool {
		if _, ok := u.Query()["code"]; ok || u.Query().Has("error") {
			to = u.String()
			return true
		}
		return false
	})
	if to != "" {
		return to, nil
	}
	if err == nil {
		err = errors.New("browser: the server never redirected to the client")
	}
	return "", err
}

func browser(ctx context.Context, rawURL string, owns func(*url.URL) bool) error {
	return browserUntil(ctx, rawURL, owns, nil)
}

// browserUntil is browser, stopping at the first redirect that stop
// reports true for.
func browserUntil(ctx context.Context, rawURL string, owns, stop func(*url.URL) bool) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return fmt.Errorf("browser: create cookie jar: %w", err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: tr}
	if stop != nil {
		c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if stop(req.URL) {
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	resp, err := browse(ctx, c, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK && resp.Header.Get(formHeader) != "" && owns(resp.Request.URL) {
		form := url.Values{"action": {"approve"}}
		resp, err = browse(ctx, c, http.MethodPost, resp.Request.URL.String(), form)
		if err != nil {
			return err
		}
	}
	if resp.StatusCode/100 != 2 && (stop == nil || resp.StatusCode/100 != 3) {
		return &BrowserError{URL: redirectOrigin(resp.Request.URL.String()), Status: resp.StatusCode}
	}
	return nil
}

func (s *Server) owns(u *url.URL) bool {
	base, err := url.Parse(s.URL)
	return err == nil && u.Host == base.Host
}

func browse(ctx context.Context, c *http.Client, method, rawURL string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, fmt.Errorf("browser: open page: %w", stripURL(err))
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("browser: open page: %w", stripURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp, nil
}

// stripURL drops the URL from a *url.Error: it may carry a code or state.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
