package authcode

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// callback serves the redirect URI. The first GET to CallbackPath that
// carries a state, code or error is handed to Login; it answers that
// request once Login has the outcome. Every other request gets a 404 or
// 400 and changes nothing.
type callback struct {
	path    string // the redirect URI's path
	once    sync.Once
	params  chan url.Values // capacity 1, written once
	result  chan error      // capacity 1, written once by Login
	success string
	failure string
}

func newCallback(opts Options, path string) *callback {
	c := &callback{
		path:    path,
		params:  make(chan url.Values, 1),
		result:  make(chan error, 1),
		success: opts.SuccessHTML,
		failure: opts.FailureHTML,
	}
	if c.success == "" {
		c.success = defaultSuccess
	}
	if c.failure == "" {
		c.failure = defaultFailure
	}
	return c
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// The URL carries the code: keep it out of any Referer.
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path != c.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if !q.Has("state") && !q.Has("code") && !q.Has("error") {
		http.Error(w, "not an authorization response", http.StatusBadRequest)
		return
	}
	first := false
	c.once.Do(func() { first = true; c.params <- q })
	if !first {
		http.Error(w, "this login has already been handled; return to the terminal", http.StatusConflict)
		return
	}
	var err error
	select {
	case err = <-c.result:
	case <-r.Context().Done():
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(c.failure))
		return
	}
	_, _ = w.Write([]byte(c.success))
}

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;text-align:center;color:#222}
h1{font-size:1.5rem}</style></head>
<body><h1>%s</h1><p>%s</p></body></html>
`

var (
	defaultSuccess = fmt.Sprintf(page, "Logged in", "You are logged in",
		"You can close this tab and return to the terminal.")
	defaultFailure = fmt.Sprintf(page, "Login failed", "Login did not complete",
		"Return to the terminal to see what went wrong. You can close this tab.")
)

// finish hands the outcome to the waiting handler; only the first call counts.
func (c *callback) finish(err error) {
	select {
	case c.result <- err:
	default:
	}
}
