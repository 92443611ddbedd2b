package latch_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"golang.org/x/oauth2"
)

func TestGrantClassification(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		header   map[string]string
		terminal bool
		wantType string // "token", "response"
		wantCode string
	}{
		{"invalid_grant", 400, "application/json", `{"error":"invalid_grant"}`, nil, true, "token", "invalid_grant"},
		{"invalid_client 401", 401, "application/json", `{"error":"invalid_client"}`, nil, true, "token", "invalid_client"},
		{"unauthorized_client", 400, "application/json", `{"error":"unauthorized_client"}`, nil, true, "token", "unauthorized_client"},
		{"200 with error field", 200, "application/json", `{"error":"invalid_grant","error_description":"reused"}`, nil, true, "token", "invalid_grant"},
		{"invalid_request is not terminal", 400, "application/json", `{"error":"invalid_request"}`, nil, false, "token", "invalid_request"},
		{"temporarily_unavailable 503", 503, "application/json", `{"error":"temporarily_unavailable"}`, nil, false, "token", "temporarily_unavailable"},
		{"408", 408, "text/plain", `timeout`, nil, false, "response", ""},
		{"429 retry-after", 429, "text/plain", `slow down`, map[string]string{"Retry-After": "7"}, false, "response", ""},
		{"500 empty", 500, "", ``, nil, false, "response", ""},
		{"503", 503, "text/plain", `unavailable`, nil, false, "response", ""},
		{"502 html", 502, "text/html", `<html><body>Bad Gateway invalid_grant</body></html>`, nil, false, "response", ""},
		{"200 html", 200, "text/html", `<html>login page</html>`, nil, false, "response", ""},
		{"200 broken json", 200, "application/json", `{"access_token":`, nil, false, "response", ""},
		{"200 no access_token", 200, "application/json", `{"token_type":"bearer"}`, nil, false, "response", ""},
		{"200 negative expires_in", 200, "application/json", `{"access_token":"a","expires_in":-5}`, nil, false, "response", ""},
		{"200 string expires_in", 200, "application/json", `{"access_token":"a","expires_in":"soon"}`, nil, false, "response", ""},
		{"Slack ok:false invalid_refresh_token", 200, "application/json", `{"ok":false,"error":"invalid_refresh_token"}`, nil, true, "token", "invalid_refresh_token"},
		{"Slack ok:false ratelimited", 200, "application/json", `{"ok":false,"error":"ratelimited"}`, nil, false, "token", "ratelimited"},
		{"interaction_required is not terminal", 400, "application/json", `{"error":"interaction_required"}`, nil, false, "token", "interaction_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := &latch.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
			_, err := c.Refresh(context.Background(), "rt-secret-value")
			if err == nil {
				t.Fatal("got nil error")
			}
			if got := latch.IsTerminal(err); got != tt.terminal {
				t.Errorf("IsTerminal = %v, want %v (err %v)", got, tt.terminal, err)
			}
			var te *latch.TokenError
			var re *latch.ResponseError
			switch tt.wantType {
			case "token":
				if !errors.As(err, &te) || te.Code != tt.wantCode {
					t.Errorf("got %v, want *TokenError %q", err, tt.wantCode)
				}
			case "response":
				if !errors.As(err, &re) || re.StatusCode != tt.status {
					t.Errorf("got %v, want *ResponseError with status %d", err, tt.status)
				}
			}
			if strings.Contains(err.Error(), "rt-secret-value") || strings.Contains(err.Error(), "<html") {
				t.Errorf("error leaks request or body: %q", err)
			}
			if tt.header["Retry-After"] != "" && re.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter = %v, want 7s", re.RetryAfter)
			}
		})
	}
}

func TestGrantParsesToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": "at", "token_type": "bearer", "expires_in": 3600,
			"refresh_token_expires_in": "7200", "scope": "read"})
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &latch.Config{Issuer: "iss", ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}, Now: func() time.Time { return now }}
	tok, err := c.Refresh(context.Background(), "old-rt")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "old-rt" {
		t.Errorf("RefreshToken = %q, want the old one kept when none is sent", tok.RefreshToken)
	}
	if !tok.Expiry.Equal(now.Add(time.Hour)) || !tok.RefreshExpiry.Equal(now.Add(2*time.Hour)) {
		t.Errorf("Expiry = %v, RefreshExpiry = %v", tok.Expiry, tok.RefreshExpiry)
	}
	if tok.Issuer != "iss" || tok.ClientID != "cli" || tok.Scope != "read" {
		t.Errorf("got %+v", tok)
	}
}

// TestGrantSentOnce: one explicit auth style, no retry in another style,
// no redirect followed (LESSONS 6).
func TestGrantSentOnce(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	for _, tt := range []struct {
		name, secret string
		style        oauth2.AuthStyle
		wantBasic    bool
		answer       func(w http.ResponseWriter)
	}{
		{"public client, error", "", oauth2.AuthStyleAutoDetect, false, func(w http.ResponseWriter) {
			writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		}},
		{"secret in header, error", "s3cret", oauth2.AuthStyleAutoDetect, true, func(w http.ResponseWriter) {
			writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		}},
		{"secret in params", "s3cret", oauth2.AuthStyleInParams, false, func(w http.ResponseWriter) {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
		}},
		{"307 not followed", "", oauth2.AuthStyleInParams, false, func(w http.ResponseWriter) {
			w.Header().Set("Location", other.URL)
			w.WriteHeader(307)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				_, _, basic := r.BasicAuth()
				if basic != tt.wantBasic {
					t.Errorf("basic auth = %v, want %v", basic, tt.wantBasic)
				}
				if got := r.PostFormValue("client_id") != ""; got == tt.wantBasic {
					t.Errorf("client_id in body = %v, want %v", got, !tt.wantBasic)
				}
				tt.answer(w)
			}))
			defer srv.Close()
			c := &latch.Config{ClientID: "cli", ClientSecret: tt.secret, Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: tt.style}}
			if _, err := c.Refresh(context.Background(), "rt"); err == nil {
				t.Fatal("got nil error")
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("token endpoint saw %d requests, want 1", n)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target saw %d requests, want 0", n)
	}
}

func TestGrantDeadlineWithoutCallerDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &latch.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}, Timeout: 50 * time.Millisecond}
	_, err := c.Refresh(context.Background(), "rt")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if latch.IsTerminal(err) {
		t.Error("a timeout must not be terminal")
	}
}

func TestGrantAnswerTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"` + strings.Repeat("a", 1<<20) + `"}`))
	}))
	defer srv.Close()
	c := &latch.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
	_, err := c.Refresh(context.Background(), "rt")
	var re *latch.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want *ResponseError", err)
	}
}

func TestRevoke(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.PostFormValue("token_type_hint")+"="+r.PostFormValue("token"))
		if r.PostFormValue("token") == "bad" {
			writeJSON(w, 400, map[string]any{"error": "unsupported_token_type"})
		}
	}))
	defer srv.Close()
	c := &latch.Config{ClientID: "cli", RevocationURL: srv.URL}
	if err := c.Revoke(context.Background(), "rt", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	err := c.Revoke(context.Background(), "bad", "access_token")
	var te *latch.TokenError
	if !errors.As(err, &te) || te.Code != "unsupported_token_type" {
		t.Errorf("got %v, want unsupported_token_type", err)
	}
	if strings.Join(got, ",") != "refresh_token=rt,access_token=bad" {
		t.Errorf("server saw %v", got)
	}
}

// FuzzParseTokenResponse: any answer parses or fails without a panic, and
// an error never quotes the answer (which may hold tokens).
func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"secret-at","refresh_token":"secret-rt","expires_in":3600}`))
	f.Add([]byte(`{"access_token":"secret-at","expires_in":-1}`))
	f.Add([]byte(`{"error":"invalid_grant","error_description":"secret-rt reused"}`))
	f.Add([]byte(`<html>secret-at</html>`))
	f.Add([]byte(`{"access_token":"secret-at","expires_in":"1e400"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := latch.ParseTokenResponse(body, time.Unix(0, 0))
		if err == nil {
			if tok.AccessToken == "" || (!tok.Expiry.IsZero() && tok.Expiry.Before(tok.IssuedAt)) {
				t.Fatalf("accepted %q as %+v", body, tok)
			}
			return
		}
		var te *latch.TokenError
		if errors.As(err, &te) {
			return // the server's own words, by design
		}
		if msg := err.Error(); len(body) >= 4 && strings.Contains(msg, string(body)) {
			t.Fatalf("error %q quotes the body", msg)
		}
	})
}

// TestGrantFormEncodedAnswer: a token endpoint that answers form-encoded
// (GitHub does, unless the request asks for JSON) still works, errors
// included, and refresh_token_expires_in is kept.
func TestGrantFormEncodedAnswer(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		wantErr    string
	}{
		{"token", "access_token=ghu_abc&expires_in=28800&refresh_token=ghr_def&refresh_token_expires_in=15897600&scope=&token_type=bearer", 200, ""},
		{"error with status 200", "error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.", 200, "bad_refresh_token: The refresh token passed is incorrect or expired."},
		{"error 400", "error=invalid_grant", 400, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cfg := &latch.Config{Issuer: srv.URL, ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL}}
			tok, err := cfg.Refresh(context.Background(), "ghr_old")
			if tt.wantErr != "" {
				var te *latch.TokenError
				if !errors.As(err, &te) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want a TokenError with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "ghu_abc" || tok.RefreshToken != "ghr_def" || tok.RefreshExpiry.IsZero() || tok.Expiry.IsZero() {
				t.Errorf("got %+v", tok)
			}
		})
	}
}

// TestGrantSendsParams: Config.Params (an audience, RFC 8707 resources)
// go with every token request and never replace what latch sets.
func TestGrantSendsParams(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at","token_type":"Bearer"}`)
	}))
	defer srv.Close()
	cfg := &latch.Config{Issuer: srv.URL, ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: srv.URL},
		Params: url.Values{"audience": {"api://x"}, "resource": {"https://a.example/", "https://b.example/"},
			"grant_type": {"password"}, "client_id": {"evil"}}}
	if _, err := cfg.Refresh(context.Background(), "rt"); err != nil {
		t.Fatal(err)
	}
	if got.Get("audience") != "api://x" || len(got["resource"]) != 2 {
		t.Errorf("sent %v; want the audience and both resources", got)
	}
	if got.Get("grant_type") != "refresh_token" || got.Get("client_id") != "cli" || len(got["grant_type"]) != 1 {
		t.Errorf("sent %v; a param replaced what latch sets", got)
	}
}

// TestParseTokenResponseProviders: Slack's user token under authed_user
// (token_type "user", ok:true), Bitbucket's scopes for scope; a token_type
// "user" without Slack's ok field is still refused.
func TestParseTokenResponseProviders(t *testing.T) {
	now := time.Now()
	slack := `{"ok":true,"app_id":"A1","authed_user":{"id":"U1","scope":"search:read","access_token":"xoxe.xoxp-1-abc","token_type":"user","refresh_token":"xoxe-1-def","expires_in":43200},"team":{"id":"T1"}}`
	tok, err := latch.ParseTokenResponse([]byte(slack), now)
	if err != nil || tok.AccessToken != "xoxe.xoxp-1-abc" || tok.RefreshToken != "xoxe-1-def" || tok.Scope != "search:read" || !tok.Expiry.Equal(now.Add(12*time.Hour)) {
		t.Fatalf("Slack authed_user: got %+v, %v", tok, err)
	}
	refresh := `{"ok":true,"access_token":"xoxe.xoxp-1-ghi","token_type":"user","refresh_token":"xoxe-1-jkl","expires_in":43200,"scope":"search:read"}`
	if tok, err = latch.ParseTokenResponse([]byte(refresh), now); err != nil || tok.AccessToken != "xoxe.xoxp-1-ghi" {
		t.Fatalf("Slack refresh: got %+v, %v", tok, err)
	}
	bb := `{"access_token":"bb-at","scopes":"repository account","expires_in":7200,"refresh_token":"bb-rt","token_type":"bearer","state":"authorization_code"}`
	if tok, err = latch.ParseTokenResponse([]byte(bb), now); err != nil || tok.Scope != "repository account" {
		t.Fatalf("Bitbucket scopes: got %+v, %v", tok, err)
	}
	var tte *latch.TokenTypeError
	if _, err = latch.ParseTokenResponse([]byte(`{"access_token":"a","token_type":"user"}`), now); !errors.As(err, &tte) {
		t.Fatalf("token_type user without ok: got %v, want *TokenTypeError", err)
	}
	if _, err = latch.ParseTokenResponse([]byte(`{"authed_user":{"access_token":"a"}}`), now); err == nil {
		t.Fatalf("authed_user without Slack's ok: want an error")
	}
}
