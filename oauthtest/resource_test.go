package oauthtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestREST(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true, User: "octo"})
	tok := login(t, s).AccessToken

	t.Run("user", func(t *testing.T) {
		_, _, body := get(t, s, "/v2/user", tok)
		var u User
		if err := json.Unmarshal(body, &u); err != nil || u.Login != "octo" || u.Name == "" || u.ID == 0 {
			t.Fatalf("got %s, want login octo with name and id", body)
		}
	})

	t.Run("echo", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/echo?a=1&a=2", strings.NewReader(`{"x":1}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Replay", "yes")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Method  string            `json:"method"`
			Headers map[string]string `json:"headers"`
			Query   map[string]string `json:"query"`
			Body    string            `json:"body"`
		}
		if err := decodeJSON(resp, &e); err != nil {
			t.Fatal(err)
		}
		if e.Method != "PUT" || e.Body != `{"x":1}` || e.Headers["X-Replay"] != "yes" || e.Query["a"] != "1, 2" {
			t.Errorf("got %+v", e)
		}
		if _, ok := e.Headers["Authorization"]; ok {
			t.Error("echo returned the Authorization header")
		}
	})

	t.Run("items pagination", func(t *testing.T) {
		next := "/v2/items?per_page=10"
		var all []Item
		pages := 0
		linkRE := regexp.MustCompile(`<([^>]+)>; rel="next"`)
		for next != "" {
			status, h, body := get(t, s, next, tok)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", next, status, body)
			}
			var page []Item
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			pages++
			if !strings.Contains(h.Get("Link"), `per_page=10&page=3>; rel="last"`) {
				t.Errorf("Link: got %q, want rel=last to page 3", h.Get("Link"))
			}
			next = ""
			if m := linkRE.FindStringSubmatch(h.Get("Link")); m != nil {
				next = strings.TrimPrefix(m[1], s.URL)
			}
		}
		if pages != 3 || len(all) != ItemCount || all[24].ID != 25 {
			t.Fatalf("got %d pages, %d items, want 3 and %d", pages, len(all), ItemCount)
		}
	})

	t.Run("bad paging", func(t *testing.T) {
		for _, q := range []string{"per_page=abc", "per_page=0", "per_page=1000", "page=-1"} {
			if status, _, _ := get(t, s, "/v2/items?"+q, tok); status != http.StatusBadRequest {
				t.Errorf("%s: got %d, want 400", q, status)
			}
		}
	})
}

func gql(t *testing.T, s *Server, tok, query string, vars map[string]any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestGraphQL(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	tok := login(t, s).AccessToken

	_, body := gql(t, s, tok, `{ viewer { login name } }`, nil)
	if !strings.Contains(string(body), `"viewer":{"login":"dev","name":"Dev User dev"}`) {
		t.Errorf("viewer: got %s", body)
	}

	const q = `query($after: String) { items(first: 10, after: $after) { nodes { id name } pageInfo { hasNextPage endCursor } totalCount } }`
	var ids []string
	var after any
	for range 10 {
		_, body := gql(t, s, tok, q, map[string]any{"after": after})
		var r struct {
			Data struct {
				Items struct {
					Nodes    []struct{ ID, Name string }
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
					TotalCount int
				}
			}
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Data.Items.TotalCount != ItemCount {
			t.Fatalf("items: got %s", body)
		}
		for _, n := range r.Data.Items.Nodes {
			ids = append(ids, n.ID)
		}
		if !r.Data.Items.PageInfo.HasNextPage {
			break
		}
		after = *r.Data.Items.PageInfo.EndCursor
	}
	if len(ids) != ItemCount || ids[0] != "1" || ids[24] != "25" {
		t.Fatalf("walked %d items %v, want %d", len(ids), ids, ItemCount)
	}

	for _, bad := range []string{`{ nope }`, `{ items(after: "zzz") { totalCount } }`, `{ items(first: -1) { totalCount } }`} {
		status, body := gql(t, s, tok, bad, nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"errors"`) {
			t.Errorf("%s: got %d %s, want GraphQL errors", bad, status, body)
		}
	}
	if status, _ := gql(t, s, "nope", `{ viewer { login } }`, nil); status != http.StatusUnauthorized {
		t.Errorf("bad token: got %d, want 401", status)
	}
}

// TestBadInput sends malformed requests; each gets an RFC 6749 §5.2 style
// error answer rather than a panic or a dropped connection.
func TestBadInput(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	a := login(t, s)
	tests := []struct {
		name   string
		form   url.Values
		status int
		err    string
	}{
		{"no grant_type", url.Values{}, 400, "invalid_request"},
		{"unknown grant_type", url.Values{"grant_type": {"password"}, "username": {"u"}}, 400, "unsupported_grant_type"},
		{"client_credentials of a public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}}, 401, "invalid_client"}, // RFC 6749 §4.4.2: the client must authenticate
		{"code missing", url.Values{"grant_type": {"authorization_code"}, "client_id": {testClient}}, 400, "invalid_request"},
		{"code unknown", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {testClient}, "code_verifier": {"v"}}, 400, "invalid_grant"},
		{"refresh missing", url.Values{"grant_type": {"refresh_token"}, "client_id": {testClient}}, 400, "invalid_request"},
		{"refresh without client", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, 401, "invalid_client"},
		{"refresh by another client", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}, "client_id": {"other"}}, 400, "invalid_grant"},
		{"refresh with a secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {testClient}, "client_secret": {"s"}}, 400, "invalid_grant"},
		{"device code missing", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {testClient}}, 400, "access_denied"},
		{"wider scope on refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}, "client_id": {testClient}, "scope": {"admin"}}, 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, postForm(t, s.URL+"/oauth/token", tt.form), tt.status, tt.err)
		})
	}
	wantTokens(t, refresh(t, s, a.RefreshToken)) // none of the above spent it

	t.Run("GET token endpoint", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/oauth/token?grant_type=refresh_token")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("got %d, want 405", resp.StatusCode)
		}
	})

	t.Run("raw bodies", func(t *testing.T) {
		for _, body := range []string{"%", "grant_type=%zz", strings.Repeat("a", 70<<10), "grant_type=refresh_token&refresh_token=%00%ff"} {
			resp, err := http.Post(s.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatalf("body %.20q: %v", body, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("body %.20q: got %d, want 400 or 401", body, resp.StatusCode)
			}
		}
	})

	t.Run("authorization headers", func(t *testing.T) {
		for _, h := range []string{"Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "bearer \x7f", "Bearer " + strings.Repeat("A", 5000)} {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/v2/user", nil)
			req.Header.Set("Authorization", h)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // net/http refuses to send some of these
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %.20q: got %d, want 401", h, resp.StatusCode)
			}
		}
	})
}

// FuzzTokenEndpoint feeds arbitrary form bodies to the token endpoint. It
// must answer with a JSON error or tokens, never panic and never 5xx.
func FuzzTokenEndpoint(f *testing.F) {
	s, _ := start(f, Options{AutoApprove: true})
	a := login(f, s)
	for _, seed := range []string{
		"grant_type=refresh_token&client_id=c&refresh_token=" + url.QueryEscape(a.RefreshToken),
		"grant_type=authorization_code&code=x&client_id=c&code_verifier=v&redirect_uri=http://127.0.0.1/",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x&client_id=c",
		"grant_type=password", "", "%", "a=b&&&=", "grant_type=refresh_token&scope=%20%20&client_id=%00",
		"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=x.y.z&grant_type=refresh_token",
	} {
		f.Add(seed, "")
	}
	f.Add("grant_type=refresh_token&refresh_token=x", "Basic Og==")
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body, authz string) {
		req, err := http.NewRequest(http.MethodPost, s.URL+"/oauth/token", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: got %d %s", body, rec.Code, rec.Body)
		}
		var ans struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || (ans.Error == "" && ans.AccessToken == "") {
			t.Fatalf("body %q: got %d %q, want a JSON error or tokens", body, rec.Code, rec.Body)
		}
	})
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{AutoApprove: true}, "127.0.0.1:0", pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("no output")
	}
	base := sc.Text()
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(base) {
		t.Fatalf("first line: got %q, want http://127.0.0.1:PORT", base)
	}
	var rest strings.Builder
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
		rest.WriteString(sc.Text() + "\n")
	}
	go io.Copy(io.Discard, pr)
	if !strings.Contains(rest.String(), "latch auth login --host "+base) {
		t.Errorf("instructions: got %q, want a login command", rest.String())
	}
	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: got %v, want nil after ctx ends", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after Serve returned")
	}
	if err := Serve(context.Background(), Options{}, "0.0.0.0:0", io.Discard); err == nil {
		t.Error("Serve on 0.0.0.0: got nil, want a loopback-only error")
	}
}

func TestBrowserError(t *testing.T) {
	s, _ := start(t, Options{})
	err := s.Browser()(context.Background(), s.URL+"/login?id=nope&secret=shh")
	var be *BrowserError
	if !errors.As(err, &be) || be.Status != http.StatusBadRequest {
		t.Fatalf("got %v, want *BrowserError 400", err)
	}
	if strings.Contains(err.Error(), "shh") {
		t.Errorf("error %q leaks the query", err)
	}
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewServer(Options{AutoApprove: true})
	t.Run("use", func(t *testing.T) { // its cleanups close the callback server
		a := login(t, s)
		wantTokens(t, refresh(t, s, a.RefreshToken))
	})
	http.DefaultClient.CloseIdleConnections()
	s.Close()
	s.Close() // twice is fine
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: got %d after Close, want <= %d\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func ExampleNewServer() {
	srv := NewServer(Options{AutoApprove: true})
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var md struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&md)
	fmt.Println(md.Methods)
	// Output: [S256]
}

// BenchmarkRefresh measures one refresh_token round trip over loopback,
// rotation included.
func BenchmarkRefresh(b *testing.B) {
	s, _ := start(b, Options{AutoApprove: true})
	rt := login(b, s).RefreshToken
	for b.Loop() {
		a := refresh(b, s, rt)
		if a.Status != http.StatusOK {
			b.Fatalf("refresh: %d %s", a.Status, a.Error)
		}
		rt = a.RefreshToken
	}
}

// BenchmarkResource measures an authenticated GET /v2/user over loopback.
func BenchmarkResource(b *testing.B) {
	s, _ := start(b, Options{AutoApprove: true})
	tok := login(b, s).AccessToken
	for b.Loop() {
		if status, _, _ := get(b, s, "/v2/user", tok); status != http.StatusOK {
			b.Fatalf("GET /v2/user: %d", status)
		}
	}
}
