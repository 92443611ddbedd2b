package debughttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// FuzzDebugSecret sends a random secret through a request (header, query,
// form body) and back in a response (JSON body, cookie, Location) and checks
// that it never appears in the log, while the server and the caller see it
// intact.
func FuzzDebugSecret(f *testing.F) {
	f.Add([]byte("abcdefgh12345678"), uint8(0))
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"), uint8(1))
	f.Add([]byte("~~~~~~~~"), uint8(2))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		s := r.PostForm.Get("refresh_token")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/cb?code="+url.QueryEscape(s))
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: s})
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"access_token":%q,"nested":{"list":[{"refresh_token":%q}]},"echo":%q}`, s, s, r.Header.Get("X-Echo"))
	}))
	f.Cleanup(srv.Close)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	run := func(t *testing.T, s string, maxBody int) string {
		var out bytes.Buffer
		c := *c
		c.Transport = &Transport{Out: &out, MaxBody: maxBody}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s}, "client_secret": {s}}
		req, _ := http.NewRequest("POST", srv.URL+"/token?access_token="+url.QueryEscape(s), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+s)
		req.Header.Set("X-Echo", "hello")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var v struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.AccessToken != s {
			t.Fatalf("caller read %q (%v), want the secret back", body, err)
		}
		return out.String()
	}
	f.Fuzz(func(t *testing.T, raw []byte, size uint8) {
		if len(raw) < 8 {
			t.Skip()
		}
		if len(raw) > 64 {
			raw = raw[:64]
		}
		b := make([]byte, len(raw))
		o := make([]byte, len(raw)) // a different secret of the same length
		for i, c := range raw {
			b[i] = alphabet[int(c)%len(alphabet)]
			o[i] = alphabet[(int(c)+1)%len(alphabet)]
		}
		secret, otherSecret := string(b), string(o)
		maxBody := []int{0, 7, 40, 100}[size%4] // also cut bodies mid-secret
		if log := run(t, secret, maxBody); strings.Contains(log, secret) {
			if strings.Contains(run(t, otherSecret, maxBody), secret) {
				t.Skip("secret is part of the fixed text")
			}
			t.Fatalf("secret %q leaked:\n%s", secret, log)
		}
	})
}
