// Package hydra tests the real latch binary against ORY Hydra v2.3.0, an
// OAuth 2.0 and OpenID Connect server nobody here wrote, built from the Go
// module proxy in this module so that the main module stays small.
//
// Each test starts its own Hydra (in-memory SQLite) behind a transparent
// proxy that counts token requests and can lose an answer, a login and
// consent app that accepts through Hydra's admin API, and a resource
// server that checks tokens with Hydra's introspection (RFC 7662).
package hydra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HydraVersion is the Hydra this suite is built and run against.
const HydraVersion = "v2.3.0"

const (
	clientID = "latch-cli"
	audience = "https://api.example"
	apiScope = "api:read"
	subject  = "dev-user"
	username = "dev"
)

var hydraBin, latchBin string

// reuseLog is what Hydra logs when a rotated-out refresh token comes back.
const reuseLog = "Refresh token re-use was detected"

func TestMain(m *testing.M) {
	if os.Getenv("HYDRA_INTEROP_BROWSER") == "1" {
		browse(os.Args[1])
		return
	}
	var err error
	if hydraBin, err = buildHydra(); err == nil {
		latchBin, err = buildLatch()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop/hydra:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(filepath.Dir(latchBin))
	os.Exit(code)
}

// buildHydra returns $LATCH_HYDRA_BIN, or a Hydra built once into the user
// cache (the Go build cache makes a rebuild cheap, but linking is not).
func buildHydra() (string, error) {
	if p := os.Getenv("LATCH_HYDRA_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	bin := filepath.Join(dir, "latch-interop", "hydra-"+HydraVersion+"-"+runtime.Version())
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	start := time.Now()
	// DSN=memory is SQLite: cgo and these tags.
	cmd := exec.Command("go", "build", "-tags", "sqlite,sqlite_omit_load_extension", "-o", tmp, "github.com/ory/hydra/v2")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hydra: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "interop/hydra: built hydra %s in %s\n", HydraVersion, time.Since(start).Round(time.Second))
	return bin, os.Rename(tmp, bin)
}

// buildLatch builds the latch binary from the main module.
func buildLatch() (string, error) {
	dir, err := os.MkdirTemp("", "latch-interop-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "latch")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/latch")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build latch: %v\n%s", err, out)
	}
	return bin, nil
}

// --- Hydra and its helpers ------------------------------------------------------

type hydraOptions struct {
	accessTTL   time.Duration
	gracePeriod time.Duration // oauth2.grant.refresh_token.rotation_grace_period
}

type server struct {
	t       *testing.T
	issuer  string // the proxy in front of Hydra's public port
	admin   string
	rs      string // the resource server
	proxy   *proxy
	logMu   sync.Mutex
	hydraLg bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startHydra(t *testing.T, o hydraOptions) *server {
	t.Helper()
	if o.accessTTL == 0 {
		o.accessTTL = time.Hour
	}
	s := &server{t: t}
	publicPort, adminPort := freePort(t), freePort(t)
	s.admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	s.proxy = newProxy(fmt.Sprintf("http://127.0.0.1:%d", publicPort))
	ps := httptest.NewServer(s.proxy)
	t.Cleanup(ps.Close)
	s.issuer = ps.URL
	app := httptest.NewServer(s.loginConsentApp())
	t.Cleanup(app.Close)
	rs := httptest.NewServer(s.resourceServer())
	t.Cleanup(rs.Close)
	s.rs = rs.URL

	cfg := fmt.Sprintf(`dsn: memory
serve:
  public: {host: 127.0.0.1, port: %d}
  admin: {host: 127.0.0.1, port: %d}
  cookies: {same_site_mode: Lax}
urls:
  self: {issuer: %s}
  login: %s/login
  consent: %s/consent
secrets:
  system: [latch-interop-system-secret-0123456789]
ttl:
  access_token: %s
  refresh_token: 24h
oauth2:
  grant:
    refresh_token:
      rotation_grace_period: %s
oidc:
  dynamic_client_registration:
    enabled: true
    default_scope: [openid, offline_access, %s]
log: {level: info, format: json, leak_sensitive_values: false}
`, publicPort, adminPort, s.issuer, app.URL, app.URL, o.accessTTL, o.gracePeriod, apiScope)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hydra.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hydraBin, "serve", "all", "--dev", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = s.logWriter(), s.logWriter()
	cmd.Env = append(os.Environ(), "DSN=memory")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("hydra log:\n%s", s.hydraLog())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready after 60s:\n%s", s.hydraLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.createClient(map[string]any{
		"client_id": clientID, "client_name": "latch",
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline_access " + apiScope,
		"audience":                   []string{audience},
		// RFC 8252 §7.3: any port on the loopback address.
		"redirect_uris": []string{"http://127.0.0.1/callback"},
	})
	return s
}

type lockedWriter struct{ s *server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.logMu.Lock()
	defer w.s.logMu.Unlock()
	return w.s.hydraLg.Write(p)
}

func (s *server) logWriter() io.Writer { return lockedWriter{s} }

func (s *server) hydraLog() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.hydraLg.String()
}

// adminJSON calls Hydra's admin API and decodes its JSON answer into out.
func (s *server) adminJSON(method, path string, in, out any) {
	s.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.admin+path, body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("hydra admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("hydra admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("hydra admin %s %s: %v", method, path, err)
		}
	}
}

func (s *server) createClient(c map[string]any) {
	s.adminJSON(http.MethodPost, "/admin/clients", c, nil)
}

// loginConsentApp is Hydra's login and consent UI, with no person: it
// accepts every login as subject and grants what was asked for, with the
// username in the id_token.
func (s *server) loginConsentApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		var acc struct {
			RedirectTo string `json:"redirect_to"`
		}
		s.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": subject, "remember": false}, &acc)
		http.Redirect(w, r, acc.RedirectTo, http.StatusFound)
	})
	mux.HandleFunc("/consent", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			Scope    []string `json:"requested_scope"`
			Audience []string `json:"requested_access_token_audience"`
		}
		s.adminJSON(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req)
		var acc struct {
			RedirectTo string `json:"redirect_to"`
		}
		s.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch, map[string]any{
			"grant_scope": req.Scope, "grant_access_token_audience": req.Audience,
			"session": map[string]any{"id_token": map[string]any{"preferred_username": username}},
		}, &acc)
		http.Redirect(w, r, acc.RedirectTo, http.StatusFound)
	})
	return mux
}

// resourceServer serves GET /v2/user to a token Hydra's introspection
// says is active, for the API's audience, with the API scope.
func (s *server) resourceServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-protected-resource" {
			// RFC 9728: the API names Hydra as its authorization server.
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"resource": "http://" + r.Host, "authorization_servers": []string{s.issuer}})
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || r.URL.Path != "/v2/user" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			http.Error(w, `{"message":"requires authentication"}`, http.StatusUnauthorized)
			return
		}
		resp, err := http.PostForm(s.admin+"/admin/oauth2/introspect", url.Values{"token": {tok}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var in struct {
			Active bool     `json:"active"`
			Sub    string   `json:"sub"`
			Aud    []string `json:"aud"`
			Scope  string   `json:"scope"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&in)
		switch {
		case !in.Active:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"message":"bad credentials"}`, http.StatusUnauthorized)
		case !slices.Contains(in.Aud, audience) || !slices.Contains(strings.Fields(in.Scope), apiScope):
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
			http.Error(w, `{"message":"token is not for this API"}`, http.StatusForbidden)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"login": in.Sub})
		}
	})
}

// redeem sends refreshToken to Hydra's token endpoint directly, as an
// attacker holding a copy would, and returns the error code or "ok".
func (s *server) redeem(refreshToken string) string {
	s.t.Helper()
	resp, err := http.PostForm(s.issuer+"/oauth2/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {clientID},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if r.AccessToken != "" {
		return "ok"
	}
	return r.Error
}

// --- the proxy ----------------------------------------------------------------

// proxy forwards everything to Hydra's public port unchanged, counts token
// requests by grant type and refresh answers by status, and can drop the
// answer to the next refresh requests after Hydra processed them.
type proxy struct {
	target    string
	client    *http.Client
	mu        sync.Mutex
	calls     map[string]int // grant_type → token requests
	refreshOK int
	refreshKO int // refresh answers that were not 200
	dropAfter atomic.Int32
	lost      atomic.Int32
	// misdirected counts requests that carried a bearer token to Hydra
	// anywhere but its userinfo endpoint: API calls sent to the wrong place.
	misdirected atomic.Int32
}

func newProxy(target string) *proxy {
	return &proxy{target: target, calls: map[string]int{},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *proxy) counts() (calls map[string]int, ok, ko int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := map[string]int{}
	for k, v := range p.calls {
		c[k] = v
	}
	return c, p.refreshOK, p.refreshKO
}

func (p *proxy) reset() {
	p.mu.Lock()
	p.calls, p.refreshOK, p.refreshKO = map[string]int{}, 0, 0
	p.mu.Unlock()
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && r.URL.Path != "/userinfo" {
		p.misdirected.Add(1)
	}
	grant := ""
	if r.URL.Path == "/oauth2/token" {
		form, _ := url.ParseQuery(string(body))
		grant = form.Get("grant_type")
		p.mu.Lock()
		p.calls[grant]++
		p.mu.Unlock()
	}
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	out.Host = r.Host // Hydra builds URLs from its configured issuer
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if grant == "refresh_token" {
		p.mu.Lock()
		if resp.StatusCode == http.StatusOK {
			p.refreshOK++
		} else {
			p.refreshKO++
		}
		p.mu.Unlock()
		if resp.StatusCode == http.StatusOK && p.dropAfter.Add(-1) >= 0 {
			// Hydra rotated; the client never hears of it.
			p.lost.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// --- latch, run as a person would -------------------------------------------------

type user struct {
	t   *testing.T
	s   *server
	dir string
	// clientID is LATCH_CLIENT_ID; "" leaves latch to register one.
	clientID string
	// host is LATCH_HOST: Hydra's issuer, or "" for zero configuration.
	host string
}

func newUser(t *testing.T, s *server) *user {
	return &user{t: t, s: s, dir: t.TempDir(), clientID: clientID, host: s.issuer}
}

type result struct {
	stdout, stderr string
	code           int
}

func (u *user) cmd(stdin string, args ...string) *exec.Cmd {
	self, _ := os.Executable()
	cmd := exec.Command(latchBin, args...)
	cmd.Env = append(os.Environ(),
		"HOME="+u.dir, "XDG_CONFIG_HOME="+filepath.Join(u.dir, "xdg"),
		"LATCH_CONFIG_DIR="+filepath.Join(u.dir, "config"),
		"LATCH_HOST="+u.host, "LATCH_CLIENT_ID="+u.clientID,
		"LATCH_CREDENTIAL_STORE=file", "NO_COLOR=1",
		"BROWSER="+self, "HYDRA_INTEROP_BROWSER=1",
		"LATCH_TOKEN=", "LATCH_DEBUG=",
	)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

func (u *user) run(stdin string, args ...string) result {
	u.t.Helper()
	cmd := u.cmd(stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("latch %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs latch and fails the test unless it exits 0.
func (u *user) ok(args ...string) result {
	u.t.Helper()
	r := u.run("", args...)
	if r.code != 0 {
		u.t.Fatalf("latch %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// stored reads the credential file of the single login.
func (u *user) stored() map[string]any {
	u.t.Helper()
	files, _ := filepath.Glob(filepath.Join(u.dir, "config", "cred-*.json"))
	if len(files) != 1 {
		u.t.Fatalf("want 1 credential file, found %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		u.t.Fatal(err)
	}
	var f struct {
		Token map[string]any `json:"token"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Token == nil {
		u.t.Fatalf("credential file: %v", err)
	}
	return f.Token
}

func (u *user) login(extra ...string) result {
	u.t.Helper()
	args := append([]string{"auth", "login", "--scopes", "openid,offline_access," + apiScope, "--audience", audience}, extra...)
	return u.ok(args...)
}

// browse is the browser: it follows redirects, keeping cookies, through
// Hydra, the login and consent app, and back to latch's loopback callback.
func browse(u string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 20 {
		resp, err := c.Get(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "browser:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			os.Exit(0)
		}
		base, _ := url.Parse(u)
		next, err := base.Parse(loc)
		if err != nil {
			os.Exit(1)
		}
		u = next.String()
	}
	os.Exit(1)
}

func mustContain(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: want %q in:\n%s", what, want, got)
	}
}

// --- the tests --------------------------------------------------------------------

// Login through a browser, an API scope and an audience, the account from
// the id_token verified with Hydra's keys, the API, a proactive refresh
// with rotation, and logout with revocation.
func TestLoginRefreshLogout(t *testing.T) {
	s := startHydra(t, hydraOptions{accessTTL: 8 * time.Second})
	u := newUser(t, s)
	r := u.login()
	mustContain(t, "login", r.stderr, "Logged in to "+s.issuer+" as "+username+" with client "+clientID+".")
	mustContain(t, "login", r.stderr, "scope=openid+offline_access+api%3Aread")
	mustContain(t, "login", r.stderr, "audience=https%3A%2F%2Fapi.example")
	mustContain(t, "status", u.ok("auth", "status").stdout, "account: "+username)

	r = u.ok("--api-url", s.rs, "api", "v2/user", "--jq", ".login")
	if strings.TrimSpace(r.stdout) != subject {
		t.Fatalf("api: %q", r.stdout)
	}
	first := u.stored()
	rt0 := first["refresh_token"].(string)

	// Proactive refresh: within a quarter of the 8 s lifetime of expiry,
	// auth token refreshes before printing.
	time.Sleep(6500 * time.Millisecond)
	s.proxy.reset()
	r = u.ok("auth", "token")
	if strings.TrimSpace(r.stdout) == first["access_token"] {
		t.Fatal("auth token printed the token about to expire")
	}
	calls, ok, ko := s.proxy.counts()
	if calls["refresh_token"] != 1 || ok != 1 || ko != 0 {
		t.Fatalf("refresh calls %v, ok %d, refused %d; want one refresh", calls, ok, ko)
	}
	second := u.stored()
	if second["refresh_token"] == rt0 || second["generation"].(float64) != 1 {
		t.Fatalf("refresh did not rotate: generation %v", second["generation"])
	}
	r = u.ok("--api-url", s.rs, "api", "v2/user", "--jq", ".login")
	if strings.TrimSpace(r.stdout) != subject {
		t.Fatalf("api after refresh: %q", r.stdout)
	}

	// Logout revokes at Hydra (RFC 7009): the refresh token is then dead.
	r = u.ok("auth", "logout")
	mustContain(t, "logout", r.stderr, "refresh token revoked")
	if got := s.redeem(second["refresh_token"].(string)); got == "ok" {
		t.Fatal("Hydra still accepts the refresh token after logout")
	}
	if r := u.run("", "auth", "token"); r.code != 4 {
		t.Fatalf("auth token after logout: exit %d, want 4", r.code)
	}
}

// Without the audience, Hydra's token is not for the API: the API says
// so, and latch shows it (exit 1), without refreshing in a loop.
func TestAudienceMatters(t *testing.T) {
	s := startHydra(t, hydraOptions{})
	u := newUser(t, s)
	u.ok("auth", "login", "--scopes", "openid,offline_access,"+apiScope)
	s.proxy.reset()
	r := u.run("", "--api-url", s.rs, "api", "v2/user")
	if r.code != 1 || !strings.Contains(r.stdout, "token is not for this API") {
		t.Fatalf("api without audience: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if calls, _, _ := s.proxy.counts(); calls["refresh_token"] != 0 {
		t.Fatalf("a 403 made latch refresh: %v", calls)
	}
}

// 32 processes on an expired token: exactly one refresh reaches Hydra,
// none is refused, and all print the same new token.
func TestStorm(t *testing.T) {
	s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second})
	u := newUser(t, s)
	u.login()
	old := u.stored()["access_token"]
	time.Sleep(3500 * time.Millisecond)
	s.proxy.reset()
	const n = 32
	out := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := u.cmd("", "auth", "token")
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			if err := cmd.Run(); err != nil {
				errs <- fmt.Sprintf("process %d: %v: %s", i, err, se.String())
			}
			out[i] = strings.TrimSpace(so.String())
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	calls, ok, ko := s.proxy.counts()
	t.Logf("token requests: %v; refresh answers ok %d, refused %d", calls, ok, ko)
	if calls["refresh_token"] != 1 || ok != 1 || ko != 0 {
		t.Fatalf("want exactly 1 refresh and 0 refused, got %v, ok %d, refused %d", calls, ok, ko)
	}
	for i, tok := range out {
		if tok == "" || tok == old || tok != out[0] {
			t.Fatalf("process %d printed %q; want the one new token", i, tok)
		}
	}
	if strings.Contains(s.hydraLog(), reuseLog) {
		t.Fatal("Hydra's log reports a refresh token reuse")
	}
}

// --with-token is checked at Hydra's userinfo endpoint (OIDC Core §5.3)
// before it is stored.
func TestWithToken(t *testing.T) {
	s := startHydra(t, hydraOptions{})
	a := newUser(t, s)
	a.login()
	at := a.stored()["access_token"].(string)

	b := newUser(t, s)
	r := b.run(at, "auth", "login", "--with-token")
	if r.code != 0 {
		t.Fatalf("--with-token: exit %d: %s", r.code, r.stderr)
	}
	mustContain(t, "--with-token", r.stderr, "The token was checked at "+s.issuer+"/userinfo and accepted.")
	mustContain(t, "--with-token", r.stderr, " as "+username+" ")
	r = b.ok("--api-url", s.rs, "api", "v2/user", "--jq", ".login")
	if strings.TrimSpace(r.stdout) != subject {
		t.Fatalf("api with the pasted token: %q", r.stdout)
	}

	c := newUser(t, s)
	r = c.run("ory_at_not-a-real-token-0123456789", "auth", "login", "--with-token")
	if r.code != 4 || !strings.Contains(r.stderr, "the server rejected the token: HTTP 401 from "+s.issuer+"/userinfo") {
		t.Fatalf("a bad token: exit %d: %s", r.code, r.stderr)
	}
	if files, _ := filepath.Glob(filepath.Join(c.dir, "config", "cred-*.json")); len(files) != 0 {
		t.Fatalf("a rejected token was stored: %v", files)
	}
}

// A refresh whose answer is lost after Hydra rotated (the promise, item
// 12): with rotation_grace_period, latch's one immediate retry of the same
// refresh token works and the session survives; with none, Hydra refuses
// the retry and latch says plainly that the server may have rotated.
func TestLostAnswer(t *testing.T) {
	t.Run("grace", func(t *testing.T) {
		s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second, gracePeriod: 30 * time.Second})
		u := newUser(t, s)
		u.login()
		time.Sleep(3500 * time.Millisecond)
		s.proxy.reset()
		s.proxy.dropAfter.Store(1)
		r := u.ok("--api-url", s.rs, "api", "v2/user", "--jq", ".login")
		if strings.TrimSpace(r.stdout) != subject {
			t.Fatalf("api: %q", r.stdout)
		}
		calls, ok, ko := s.proxy.counts()
		if s.proxy.lost.Load() != 1 || calls["refresh_token"] != 2 || ok != 2 || ko != 0 {
			t.Fatalf("lost %d, calls %v, ok %d, refused %d; want 1 lost answer and 1 retry accepted",
				s.proxy.lost.Load(), calls, ok, ko)
		}
		// The set saved from the retry keeps working.
		time.Sleep(3500 * time.Millisecond)
		u.ok("--api-url", s.rs, "api", "v2/user")
		if st := u.stored(); st["generation"].(float64) != 2 {
			t.Fatalf("generation %v, want 2", st["generation"])
		}
	})
	t.Run("strict", func(t *testing.T) {
		s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second})
		u := newUser(t, s)
		u.login()
		time.Sleep(3500 * time.Millisecond)
		s.proxy.dropAfter.Store(1)
		r := u.run("", "--api-url", s.rs, "api", "v2/user")
		if r.code != 4 || !strings.Contains(r.stderr, "latch auth login") {
			t.Fatalf("strict: exit %d: %s", r.code, r.stderr)
		}
		// The retry was a reuse to Hydra, which revoked the login: the
		// log line TestStorm checks is absent there.
		if !strings.Contains(s.hydraLog(), reuseLog) {
			t.Fatalf("Hydra's log lacks %q", reuseLog)
		}
	})
}

// Dynamic client registration (RFC 7591): with no client ID configured,
// latch registers a public client at Hydra's /oauth2/register (which
// Hydra's discovery does not name, hence --registration-url), logs in
// with it, refreshes, and reuses it on the next login.
func TestDynamicRegistration(t *testing.T) {
	s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second})
	u := newUser(t, s)
	u.clientID = ""
	r := u.ok("auth", "login", "--registration-url", s.issuer+"/oauth2/register")
	mustContain(t, "login", r.stderr, "Registered latch with the server as client ")
	mustContain(t, "login", r.stderr, "Logged in to "+s.issuer+" as "+username+" with client ")
	registered := u.stored()["client_id"].(string)
	if registered == "" || registered == clientID {
		t.Fatalf("client_id %q: want the registered one", registered)
	}
	time.Sleep(3500 * time.Millisecond)
	s.proxy.reset()
	u.ok("auth", "token")
	if calls, ok, _ := s.proxy.counts(); calls["refresh_token"] != 1 || ok != 1 {
		t.Fatalf("refresh with the registered client: %v", calls)
	}
	r = u.ok("auth", "login", "--registration-url", s.issuer+"/oauth2/register")
	if strings.Contains(r.stderr, "Registered") {
		t.Fatalf("a second login registered again:\n%s", r.stderr)
	}
	if got := u.stored()["client_id"]; got != registered {
		t.Fatalf("second login used client %v, want %s", got, registered)
	}
}

// Zero configuration with Hydra as the authorization server of an API on
// another origin (RFC 9728): the login is the resource's, and every
// request goes to the resource with Hydra's token, none to Hydra
// (LESSONS 27); refreshes go to Hydra.
func TestZeroConfigResourceOnAnotherOrigin(t *testing.T) {
	s := startHydra(t, hydraOptions{accessTTL: 3 * time.Second})
	u := newUser(t, s)
	u.host = ""
	r := u.ok("auth", "login", "--resource", s.rs, "--scopes", "openid,offline_access,"+apiScope, "--audience", audience)
	mustContain(t, "login", r.stderr, "The resource "+s.rs+" names its authorization server: "+s.issuer)
	r = u.ok("api", "/v2/user")
	mustContain(t, "api /v2/user", r.stdout, username)
	r = u.ok("api", s.rs+"/v2/user")
	mustContain(t, "api with the resource's URL", r.stdout, username)
	r = u.ok("auth", "status")
	mustContain(t, "status", r.stdout, "resource: "+s.rs)
	mustContain(t, "status", r.stdout, "authorization server: "+s.issuer)
	if n := s.proxy.misdirected.Load(); n != 0 {
		t.Fatalf("%d requests carried the API's token to Hydra", n)
	}
	time.Sleep(3500 * time.Millisecond)
	s.proxy.reset()
	r = u.ok("api", "/v2/user")
	mustContain(t, "api after expiry", r.stdout, username)
	if calls, ok, _ := s.proxy.counts(); calls["refresh_token"] != 1 || ok != 1 {
		t.Fatalf("refresh at Hydra: %v", calls)
	}
}
