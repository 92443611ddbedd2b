package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/device"
)

const deviceCode = "dc-SECRET-0123456789abcdef"

// answer is one scripted token-endpoint answer.
type devAnswer struct {
	status int
	ctype  string
	body   string
}

func pending() devAnswer { return oauthErr("authorization_pending") }
func oauthErr(code string) devAnswer {
	return devAnswer{400, "application/json", `{"error":"` + code + `"}`}
}
func approved() devAnswer {
	return devAnswer{200, "application/json", `{"access_token":"at-1","refresh_token":"rt-1","token_type":"Bearer","expires_in":3600}`}
}

// deviceAS has a device authorization endpoint and a token endpoint that
// plays answers in order, repeating the last.
type deviceAS struct {
	*httptest.Server
	t         *testing.T
	deviceDoc string

	mu      sync.Mutex
	answers []devAnswer
	forms   []url.Values // token requests seen
	devForm url.Values
}

func newDeviceAS(t *testing.T, answers ...devAnswer) *deviceAS {
	f := &deviceAS{t: t, answers: answers}
	f.deviceDoc = `{"device_code":"` + deviceCode + `","user_code":"WDJB-MJHT","verification_uri":"https://as.example/device",
		"verification_uri_complete":"https://as.example/device?user_code=WDJB-MJHT","expires_in":600,"interval":5}`
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.devForm = r.PostForm
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, f.deviceDoc)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		a := f.answers[0]
		if len(f.answers) > 1 {
			f.answers = f.answers[1:]
		}
		f.mu.Unlock()
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *deviceAS) tokenCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.forms)
}

// clock is a fake clock; its Sleep advances it and records the wait.
type devClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newDevClock() *devClock { return &devClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *devClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *devClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *devClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

func (f *deviceAS) config(c *devClock) *latch.Config {
	return &latch.Config{
		Issuer:   f.URL,
		ClientID: "cli",
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: f.URL + "/device",
			TokenURL:      f.URL + "/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		Scopes: []string{"openid", "offline_access"},
		Now:    c.Now,
	}
}

func TestDeviceAuth(t *testing.T) {
	as := newDeviceAS(t, pending())
	c := newDevClock()
	code, err := device.Auth(t.Context(), as.config(c))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	want := device.AuthResponse{
		DeviceCode:              deviceCode,
		UserCode:                "WDJB-MJHT",
		VerificationURI:         "https://as.example/device",
		VerificationURIComplete: "https://as.example/device?user_code=WDJB-MJHT",
		ExpiresIn:               10 * time.Minute,
		Expiry:                  c.Now().Add(10 * time.Minute),
		Interval:                5 * time.Second,
	}
	if *code != want {
		t.Errorf("got %s, want %s", code, &want)
	}
	as.mu.Lock()
	form := as.devForm
	as.mu.Unlock()
	if form.Get("client_id") != "cli" || form.Get("scope") != "openid offline_access" {
		t.Errorf("device authorization form = %v, want client_id=cli scope=\"openid offline_access\"", form)
	}

	// The device code is never printed.
	js, _ := json.Marshal(code)
	for _, s := range []string{fmt.Sprint(code), fmt.Sprintf("%+v", code), fmt.Sprintf("%#v", code), fmt.Sprintf("%v", *code), string(js)} {
		if strings.Contains(s, deviceCode) {
			t.Errorf("printed code %q contains the device code", s)
		}
	}
	if !strings.Contains(code.String(), "WDJB-MJHT") {
		t.Errorf("String() = %q, want the user code", code)
	}
}

func TestDeviceAuthErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		check  func(t *testing.T, err error)
	}{
		{"oauth error", 400, "application/json", `{"error":"invalid_client","error_description":"unknown client"}`, func(t *testing.T, err error) {
			var te *latch.TokenError
			if !errors.As(err, &te) || te.Code != "invalid_client" {
				t.Errorf("got %v, want *latch.TokenError invalid_client", err)
			}
		}},
		{"oauth error echoing the device code", 400, "application/json",
			`{"error":"invalid_scope","error_description":"scope refused for ` + deviceCode + `","device_code":"` + deviceCode + `"}`, func(t *testing.T, err error) {
				var te *latch.TokenError
				if !errors.As(err, &te) || te.Code != "invalid_scope" || strings.Contains(te.Description, deviceCode) {
					t.Errorf("got %v, want *latch.TokenError invalid_scope without the device code", err)
				}
			}},
		{"html", 502, "text/html", "<html>bad gateway</html>", func(t *testing.T, err error) {
			var re *latch.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 502 {
				t.Errorf("got %v, want *latch.ResponseError 502", err)
			}
		}},
		{"no user_code", 200, "application/json", `{"device_code":"` + deviceCode + `","verification_uri":"https://x","expires_in":60}`, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "no user_code") {
				t.Errorf("got %v, want an error naming user_code", err)
			}
		}},
		{"negative expires_in", 200, "application/json", `{"device_code":"` + deviceCode + `","user_code":"U","verification_uri":"https://x","expires_in":-1}`, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "expires_in is negative") {
				t.Errorf("got %v, want an error naming expires_in", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cfg := &latch.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{DeviceAuthURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
			code, err := device.Auth(t.Context(), cfg)
			if err == nil {
				t.Fatalf("Start = %s, want error", code)
			}
			tt.check(t, err)
			if strings.Contains(err.Error(), deviceCode) {
				t.Errorf("error %q contains the device code", err)
			}
		})
	}
}

func TestDeviceAuthDefaults(t *testing.T) {
	as := newDeviceAS(t)
	as.deviceDoc = `{"device_code":"d","user_code":"U","verification_url":"https://as.example/device"}`
	code, err := device.Auth(t.Context(), as.config(newDevClock()))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if code.Interval != 5*time.Second || code.ExpiresIn != 15*time.Minute || code.VerificationURI != "https://as.example/device" {
		t.Errorf("got %s, want default interval and expiry, verification_url accepted", code)
	}
}

func TestDevicePollPendingSlowDownApproved(t *testing.T) {
	as := newDeviceAS(t, pending(), oauthErr("slow_down"), pending(), approved())
	c := newDevClock()
	cfg := as.config(c)
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tok, err := device.Poll(t.Context(), cfg, code, c.Sleep)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" || tok.Issuer != as.URL || tok.ClientID != "cli" {
		t.Errorf("token = %+v", tok)
	}
	// 5s before the first poll, 5s after pending, then slow_down makes it
	// 10s for good (RFC 8628 §3.5).
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second}
	if got := c.sleeps(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", got, want)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.forms) != 4 {
		t.Fatalf("token calls = %d, want 4", len(as.forms))
	}
	f := as.forms[0]
	if f.Get("grant_type") != device.GrantType || f.Get("device_code") != deviceCode || f.Get("client_id") != "cli" {
		t.Errorf("token form = %v", f)
	}
}

func TestDevicePollFails(t *testing.T) {
	tests := []struct {
		name    string
		answers []devAnswer
		is      error
		calls   int
		check   func(t *testing.T, err error)
	}{
		{name: "denied", answers: []devAnswer{pending(), oauthErr("access_denied")}, is: device.ErrDenied, calls: 2},
		{name: "expired_token", answers: []devAnswer{pending(), oauthErr("expired_token")}, is: device.ErrExpired, calls: 2},
		{
			// expires_in 600 with a 5s interval: 120 polls, then the
			// local expiry ends it without asking again.
			name: "expiry passes", answers: []devAnswer{pending()}, is: device.ErrExpired, calls: 119,
		},
		{
			name: "unknown error echoing the device code",
			answers: []devAnswer{{400, "application/json",
				`{"error":"invalid_request","error_description":"bad device_code ` + deviceCode + `"}`}},
			calls: 1,
			check: func(t *testing.T, err error) {
				var te *latch.TokenError
				if !errors.As(err, &te) || te.Code != "invalid_request" || strings.Contains(te.Description, deviceCode) || strings.Contains(err.Error(), deviceCode) {
					t.Errorf("got %v, want *latch.TokenError invalid_request with the code cut out", err)
				}
			},
		},
		{
			name:    "transient until expiry",
			answers: []devAnswer{{503, "text/html", "<html>" + deviceCode + "</html>"}},
			is:      device.ErrExpired,
			check: func(t *testing.T, err error) {
				var re *latch.ResponseError
				if !errors.As(err, &re) || re.StatusCode != 503 {
					t.Errorf("got %v, want the last *latch.ResponseError kept", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newDeviceAS(t, tt.answers...)
			c := newDevClock()
			cfg := as.config(c)
			code, err := device.Auth(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			tok, err := device.Poll(t.Context(), cfg, code, c.Sleep)
			if err == nil {
				t.Fatalf("Poll = %+v, want error", tok)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want %v", err, tt.is)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if tt.calls != 0 && as.tokenCalls() != tt.calls {
				t.Errorf("token calls = %d, want %d", as.tokenCalls(), tt.calls)
			}
			if strings.Contains(err.Error(), deviceCode) || strings.Contains(fmt.Sprintf("%#v", err), deviceCode) {
				t.Errorf("error %q contains the device code", err)
			}
		})
	}
}

func TestDevicePollTransientBacksOff(t *testing.T) {
	as := newDeviceAS(t,
		devAnswer{503, "text/html", "<html>down</html>"},
		devAnswer{500, "application/json", `{"error":"server_error"}`},
		pending(),
		approved())
	c := newDevClock()
	cfg := as.config(c)
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := device.Poll(t.Context(), cfg, code, c.Sleep); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	// Doubling after each transient error, back to the interval after a
	// real answer.
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 5 * time.Second}
	if got := c.sleeps(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", got, want)
	}
}

func TestDevicePollNetworkErrorKeepsPolling(t *testing.T) {
	as := newDeviceAS(t, pending(), approved())
	c := newDevClock()
	cfg := as.config(c)
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// The first request goes to a closed port.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tokenURL := cfg.Endpoint.TokenURL
	cfg.Endpoint.TokenURL = deadURL + "/token"
	sleep := func(ctx context.Context, d time.Duration) error {
		if len(c.sleeps()) == 1 {
			cfg.Endpoint.TokenURL = tokenURL // the network is back
		}
		return c.Sleep(ctx, d)
	}
	tok, err := device.Poll(t.Context(), cfg, code, sleep)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if tok.AccessToken != "at-1" {
		t.Errorf("token = %+v", tok)
	}
	if got := c.sleeps(); len(got) != 3 || got[1] != 10*time.Second {
		t.Errorf("slept %v, want a 10s backoff after the network error", got)
	}
}

func TestDevicePollHonoursContext(t *testing.T) {
	as := newDeviceAS(t, pending())
	c := newDevClock()
	cfg := as.config(c)
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	sleep := func(ctx context.Context, d time.Duration) error {
		if len(c.sleeps()) == 3 {
			cancel()
		}
		return c.Sleep(ctx, d)
	}
	_, err = device.Poll(ctx, cfg, code, sleep)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := as.tokenCalls(); n != 3 {
		t.Errorf("token calls = %d, want 3", n)
	}
}

func TestDevicePollRealTimer(t *testing.T) {
	as := newDeviceAS(t, pending(), approved())
	cfg := as.config(newDevClock())
	cfg.Now = nil
	code := &device.AuthResponse{DeviceCode: deviceCode, Interval: time.Millisecond, Expiry: time.Now().Add(time.Hour)}
	tok, err := device.AccessToken(t.Context(), cfg, code)
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Poll = %v, %v", tok, err)
	}
}

func TestDevicePollNoCode(t *testing.T) {
	_, err := device.AccessToken(t.Context(), &latch.Config{}, &device.AuthResponse{})
	if err == nil || !strings.Contains(err.Error(), "no device code") {
		t.Errorf("got %v, want no device code", err)
	}
}

// FuzzDeviceAnswers: whatever the device authorization and token
// endpoints answer, no error and no printed DeviceAuthResponse holds the
// device code (RFC 8628 §3.2: it is a secret), and nothing panics.
func FuzzDeviceAnswers(f *testing.F) {
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"U","verification_uri":"https://x"}`, 400, `{"error":"access_denied"}`)
	f.Add(400, `{"error":"invalid_client","error_description":"bad `+deviceCode+`","device_code":"`+deviceCode+`"}`, 200, `{}`)
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"U","verification_uri":"https://x","interval":"x"}`, 200, `null`)
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"U","verification_uri":"https://x","expires_in":1e300}`, 400, `{"error":"bad `+deviceCode+`"}`)
	f.Add(503, `<html>`+deviceCode+`</html>`, 500, `{"error":"server_error","error_description":"`+deviceCode+`"}`)
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"A\u001b]0;x\u0007","verification_uri":"https://x"}`, 400, `{"error":"access_denied"}`)
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"U","verification_uri":"javascript:alert(1)"}`, 400, `{}`)
	f.Add(200, `{"device_code":"`+deviceCode+`","user_code":"U","verification_uri":"https://x","verification_uri_complete":"https://x\nLogged in"}`, 400, `{}`)
	f.Fuzz(func(t *testing.T, devStatus int, devBody string, tokStatus int, tokBody string) {
		if devStatus < 100 || devStatus > 599 || tokStatus < 100 || tokStatus > 599 {
			return
		}
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			status, body := devStatus, devBody
			if strings.HasSuffix(r.URL.Path, "/token") {
				status, body = tokStatus, tokBody
			}
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})
		c := newDevClock()
		cfg := &latch.Config{Issuer: "https://as.example", ClientID: "cli", Now: c.Now, HTTPClient: &http.Client{Transport: rt},
			Endpoint: oauth2.Endpoint{DeviceAuthURL: "https://as.example/device", TokenURL: "https://as.example/token", AuthStyle: oauth2.AuthStyleInParams}}
		da, err := device.Auth(t.Context(), cfg)
		if err != nil {
			if strings.Contains(err.Error(), deviceCode) {
				t.Fatalf("DeviceAuth error holds the device code: %v", err)
			}
			if hasControl(err.Error()) {
				t.Fatalf("DeviceAuth error holds a control character: %q", err)
			}
			return
		}
		// What the CLI prints for the person: no control character.
		for _, v := range []string{da.UserCode, da.VerificationURI, da.VerificationURIComplete} {
			if hasControl(v) {
				t.Fatalf("DeviceAuthResponse holds a control character: %q", v)
			}
		}
		if shown := da.String() + fmt.Sprintf("%#v", da); strings.Contains(shown, deviceCode) &&
			!strings.Contains(da.UserCode+da.VerificationURI+da.VerificationURIComplete, deviceCode) {
			t.Fatalf("printed DeviceAuthResponse holds the device code: %s", shown)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		polls := 0
		_, err = device.Poll(ctx, cfg, da, func(ctx context.Context, d time.Duration) error {
			if polls++; polls > 3 {
				cancel() // a few polls are enough
			}
			return c.Sleep(ctx, d)
		})
		if err != nil && strings.Contains(err.Error(), deviceCode) {
			t.Fatalf("poll error holds the device code: %v", err)
		}
		if err != nil && hasControl(err.Error()) {
			t.Fatalf("poll error holds a control character: %q", err)
		}
	})
}

// hasControl reports whether s holds a character that drives a terminal
// or forges a line: C0 (newline included), DEL, C1, or a Unicode format
// character such as a bidi override.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
