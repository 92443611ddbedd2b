package debughttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	refresh = "rt-0123456789abcdefghijklmnop"
	access  = "at-zyxwvutsrqponmlkjihgfedcba"
	idTok   = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ."
	secret  = "client-secret-value-42"
	cookie  = "sessioncookievalue1234"
)

// tokenServer answers /token like an OAuth 2.0 token endpoint (RFC 6749
// §5.1) and /api like a resource server; it fails the test if what it got
// differs from what the client sent.
func tokenServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			if err := r.ParseForm(); err != nil {
				t.Errorf("server: parse form: %v", err)
			}
			if got := r.PostForm.Get("refresh_token"); got != refresh {
				t.Errorf("server got refresh_token %q, want %q", got, refresh)
			}
			if id, sec, _ := r.BasicAuth(); id != "cli" || sec != secret {
				t.Errorf("server got basic auth %q:%q", id, sec)
			}
			w.Header().Set("Content-Type", "application/json")
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: cookie, Path: "/"})
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":%q,"id_token":%q}`, access, refresh, idTok)
		case "/api":
			if got := r.Header.Get("Authorization"); got != "Bearer "+access {
				t.Errorf("server got Authorization %q", got)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", "<"+"http://"+r.Host+"/api?page=2&access_token="+access+`>; rel="next"`)
			fmt.Fprint(w, `{"login":"bob","items":[1,2,3]}`)
		case "/page":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<html>your token is %s</html>", access)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTokenExchangeRedacted(t *testing.T) {
	srv := tokenServer(t)
	var out bytes.Buffer
	c := &http.Client{Transport: &Transport{Out: &out}}

	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	req, _ := http.NewRequest("POST", srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cli", secret)
	req.AddCookie(&http.Cookie{Name: "sid", Value: cookie})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tok struct{ AccessToken, RefreshToken, IDToken string }
	if err := json.Unmarshal(got, &struct {
		A *string `json:"access_token"`
		R *string `json:"refresh_token"`
		I *string `json:"id_token"`
	}{&tok.AccessToken, &tok.RefreshToken, &tok.IDToken}); err != nil {
		t.Fatalf("caller's body %q: %v", got, err)
	}
	if tok.AccessToken != access || tok.RefreshToken != refresh || tok.IDToken != idTok {
		t.Errorf("caller read %+v, want the server's tokens", tok)
	}

	req, _ = http.NewRequest("GET", srv.URL+"/api?access_token="+access+"&x=1", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	req, _ = http.NewRequest("GET", srv.URL+"/page", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	log := out.String()
	for _, s := range []string{refresh, access, idTok, secret, cookie} {
		if strings.Contains(log, s) {
			t.Errorf("log shows secret %q:\n%s", s, log)
		}
	}
	for _, want := range []string{
		"> POST " + srv.URL + "/token\n",
		"> Authorization: Basic [redacted]\n",
		"> Cookie: sid=[redacted]\n",
		"grant_type=refresh_token&refresh_token=[redacted+fp:",
		"< HTTP/1.1 200 OK\n",
		"< Set-Cookie: sid=[redacted]; Path=/\n",
		`{"access_token":"[redacted fp:`,
		`"token_type":"Bearer","expires_in":3600,"refresh_token":"[redacted fp:`,
		`"id_token":"[redacted fp:`,
		"* POST " + srv.URL + "/token: 200 OK in ",
		"> GET " + srv.URL + "/api?access_token=[redacted+fp:",
		"> Authorization: Bearer [redacted fp:",
		"&access_token=[redacted+fp:",
		`{"login":"bob","items":[1,2,3]}`,
		"[text/html body, ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// countingBody counts Close calls and what was read.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

func TestRequestBodyClosedOnce(t *testing.T) {
	srv := tokenServer(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	for _, tc := range []struct {
		name    string
		url     string
		getBody bool
		wantErr bool
		maxBody int
	}{
		{"streaming", srv.URL + "/api", false, false, 0},
		{"replayable", srv.URL + "/api", true, false, 0},
		{"no body logging", srv.URL + "/api", true, false, -1},
		{"connection refused", deadURL + "/api", true, true, 0},
		{"streaming refused", deadURL + "/api", false, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingBody{Reader: strings.NewReader("x=1")}
			copies := &countingBody{Reader: strings.NewReader("x=1")}
			req, _ := http.NewRequest("POST", tc.url, body)
			if tc.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return copies, nil }
			}
			req.Header.Set("Authorization", "Bearer "+access)
			var out bytes.Buffer
			resp, err := (&Transport{Out: &out, MaxBody: tc.maxBody}).RoundTrip(req)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if resp != nil {
				resp.Body.Close()
			}
			if n := body.closes.Load(); n != 1 {
				t.Errorf("request body closed %d times, want 1", n)
			}
			if n := copies.closes.Load(); tc.getBody && tc.maxBody >= 0 && n != 1 {
				t.Errorf("GetBody copy closed %d times, want 1", n)
			}
			if strings.Contains(out.String(), access) {
				t.Errorf("log shows the token:\n%s", out.String())
			}
			if tc.wantErr && !strings.Contains(out.String(), ": error after ") {
				t.Errorf("log lacks the error:\n%s", out.String())
			}
		})
	}
}

func TestErrorRedacted(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	var out bytes.Buffer
	c := &http.Client{Transport: &Transport{Out: &out}}
	_, err := c.Get(dead.URL + "/x?access_token=" + access)
	if err == nil {
		t.Fatal("want an error from a closed server")
	}
	if strings.Contains(out.String(), access) {
		t.Errorf("log shows the token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "access_token=[redacted+fp:") {
		t.Errorf("log lacks the redacted URL:\n%s", out.String())
	}
}

func TestCallerRequestUntouched(t *testing.T) {
	srv := tokenServer(t)
	body := strings.NewReader("grant_type=refresh_token&refresh_token=" + refresh)
	req, _ := http.NewRequest("POST", srv.URL+"/token", body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cli", secret)
	wantHeader := req.Header.Clone()
	wantURL := *req.URL
	wantBody, wantLen := req.Body, req.ContentLength

	resp, err := (&Transport{Out: io.Discard}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !reflect.DeepEqual(req.Header, wantHeader) {
		t.Errorf("header changed: got %v, want %v", req.Header, wantHeader)
	}
	if *req.URL != wantURL || req.Body != wantBody || req.ContentLength != wantLen || req.Method != "POST" {
		t.Errorf("request changed: %s %v body %v len %d", req.Method, req.URL, req.Body, req.ContentLength)
	}
}

func TestLargeBodiesStreamIntact(t *testing.T) {
	const upload = 16 << 20
	const download = 1 << 20
	answer := fmt.Sprintf(`{"access_token":%q,"pad":"%s","refresh_token":%q}`, access, strings.Repeat("p", download), refresh)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Got", fmt.Sprintf("%d %x", n, h.Sum(nil)))
		// A large JSON answer with a secret both inside and beyond the logged prefix.
		io.WriteString(w, answer)
	}))
	defer srv.Close()

	pr, pw := io.Pipe()
	want := sha256.New()
	go func() {
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for sent := 0; sent < upload; sent += len(chunk) {
			want.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", srv.URL+"/upload", pr)
	var out bytes.Buffer
	resp, err := (&http.Client{Transport: &Transport{Out: &out, MaxBody: 4096}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if g, w := resp.Header.Get("X-Got"), fmt.Sprintf("%d %x", upload, want.Sum(nil)); g != w {
		t.Errorf("server got %s, want %s", g, w)
	}
	if string(got) != answer {
		t.Errorf("caller read %d bytes, want the server's %d", len(got), len(answer))
	}
	log := out.String()
	for _, want := range []string{"[streaming body, not logged]", `{"access_token":"[redacted fp:`, "…[more bytes]"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, access) || strings.Contains(log, refresh) {
		t.Error("log shows a token")
	}
	if len(log) > 4096+2048 {
		t.Errorf("log is %d bytes, want about MaxBody", len(log))
	}
}

func TestKnownLengthTruncation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Header().Set("Content-Length", "1010")
		fmt.Fprintf(w, "a=%s", strings.Repeat("x", 1008))
	}))
	defer srv.Close()
	var out bytes.Buffer
	resp, err := (&http.Client{Transport: &Transport{Out: &out, MaxBody: 10}}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(got) != 1010 {
		t.Errorf("caller read %d bytes, want 1010", len(got))
	}
	if want := "a=xxxxxxxx…[1000 more bytes]\n"; !strings.Contains(out.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, out.String())
	}
}

func TestControlCharactersEscaped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		fmt.Fprint(w, "msg=\x1b[2Jgone")
	}))
	defer srv.Close()
	var out bytes.Buffer
	resp, err := (&http.Client{Transport: &Transport{Out: &out}}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), `msg=\x1b[2Jgone`) {
		t.Errorf("escape not neutralised:\n%q", out.String())
	}
}

// unsafeWriter records each Write; it has no lock of its own, so the race
// detector reports any concurrent Write the Transport lets through.
type unsafeWriter struct{ writes []string }

func (w *unsafeWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestConcurrentBlocksDoNotInterleave(t *testing.T) {
	srv := tokenServer(t)
	w := &unsafeWriter{}
	c := &http.Client{Transport: &Transport{Out: w}}
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/api", nil)
			req.Header.Set("Authorization", "Bearer "+access)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	var reqs, resps int
	for _, b := range w.writes {
		switch {
		case strings.HasPrefix(b, "> GET ") && strings.HasSuffix(b, ">\n\n"):
			reqs++
		case strings.HasPrefix(b, "< HTTP/1.1 200 OK\n") && strings.Contains(b, "\n* GET ") && strings.HasSuffix(b, "\n\n"):
			resps++
		default:
			t.Errorf("write is not one whole block: %q", b)
		}
	}
	if reqs != n || resps != n {
		t.Errorf("got %d request and %d response blocks, want %d each", reqs, resps, n)
	}
}

func TestNilOutPassesThrough(t *testing.T) {
	srv := tokenServer(t)
	resp, err := (&http.Client{Transport: &Transport{}}).Get(srv.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(got), access) {
		t.Errorf("caller read %q, want the page", got)
	}
}
