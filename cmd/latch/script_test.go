package main

import (
	"context"
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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/app/devcmd"
	"github.com/latchdev/latch/internal/app/fastcred"
	"github.com/latchdev/latch/internal/app/gitcred"
	"github.com/latchdev/latch/oauthtest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"latch":       main,
		"latch-dev":   latchDev,
		"fakebrowser": fakeBrowser,
		"git-credential-latch": func() {
			os.Exit(gitcred.Helper(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		},
		"docker-credential-latch": func() {
			os.Exit(fastcred.Docker(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		},
		"kube-credential-latch": func() {
			os.Exit(fastcred.Kube(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
		},
	})
}

// latchDev is cmd/latch-dev's main, which `latch dev` and `latch demo`
// hand over to.
func latchDev() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := devcmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// TestScript runs testdata/script/*.txtar against an in-process dev
// server per script. A script may carry devserver.json to tune it.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: setup,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"devserver":   cmdDevserver,
			"fakeas":      cmdFakeAS,
			"resource":    cmdResource,
			"storedtoken": cmdStoredToken,
			"exits":       cmdExits,
			"writefile":   cmdWriteFile,
			"expand":      cmdExpand,
			"freeport":    cmdFreePort,
			"waithttp":    cmdWaitHTTP,
			"waitfile":    cmdWaitFile,
			"sleep":       cmdSleep,
		},
		RequireExplicitExec: false,
	})
}

// serverOpts is devserver.json: the dev server's options for one script.
type serverOpts struct {
	AccessTTL          string   `json:"access_ttl"`
	RefreshTTL         string   `json:"refresh_ttl"`
	RefreshIdle        string   `json:"refresh_idle"`
	AutoApprove        *bool    `json:"auto_approve"`
	DeviceApproveAfter int      `json:"device_approve_after"`
	DeviceInterval     string   `json:"device_interval"`
	Clients            []string `json:"clients"`
	RotationGrace      string   `json:"rotation_grace"`
	Registration       bool     `json:"registration"`
	// Quirks make the server behave as a real provider (docs/providers.md).
	Quirks oauthtest.Quirks `json:"quirks"`
}

func setup(env *testscript.Env) error {
	opts := oauthtest.Options{AutoApprove: true, DeviceInterval: time.Second}
	if b, err := os.ReadFile(filepath.Join(env.WorkDir, "devserver.json")); err == nil {
		var so serverOpts
		if err := json.Unmarshal(b, &so); err != nil {
			return fmt.Errorf("devserver.json: %w", err)
		}
		for _, d := range []struct {
			s   string
			dst *time.Duration
		}{{so.AccessTTL, &opts.AccessTTL}, {so.RefreshTTL, &opts.RefreshTTL}, {so.RefreshIdle, &opts.RefreshIdle}, {so.DeviceInterval, &opts.DeviceInterval}, {so.RotationGrace, &opts.RotationGrace}} {
			if d.s == "" {
				continue
			}
			v, err := time.ParseDuration(d.s)
			if err != nil {
				return fmt.Errorf("devserver.json: %w", err)
			}
			*d.dst = v
		}
		if so.AutoApprove != nil {
			opts.AutoApprove = *so.AutoApprove
		}
		opts.DeviceApproveAfter = so.DeviceApproveAfter
		opts.Clients = so.Clients
		opts.Quirks = so.Quirks
		opts.Registration = so.Registration
	}
	srv := oauthtest.NewServer(opts)
	env.Defer(srv.Close)
	env.Values["srv"] = srv
	home := filepath.Join(env.WorkDir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env.Setenv("HOME", home)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	env.Setenv("LATCH_CONFIG_DIR", filepath.Join(env.WorkDir, "config"))
	env.Setenv("LATCH_HOST", srv.URL)
	env.Setenv("HOSTPORT", strings.TrimPrefix(srv.URL, "http://"))
	env.Setenv("LATCH_CREDENTIAL_STORE", "file")
	env.Setenv("BROWSER", "fakebrowser")
	env.Setenv("NO_COLOR", "1")
	return nil
}

func server(ts *testscript.TestScript) *oauthtest.Server {
	return ts.Value("srv").(*oauthtest.Server)
}

// cmdDevserver drives the script's dev server:
//
//	devserver counters          print the counters as JSON
//	devserver reset             zero the counters
//	devserver expire            expire every access token now
//	devserver stop              close the server: it stops answering
//	devserver faults JSON       inject token-endpoint faults (oauthtest.Faults)
//	devserver quirks JSON       behave as a real provider (oauthtest.Quirks)
//	devserver revoke-family RT  revoke the family of refresh token RT
//	devserver refresh RT [ID]   redeem RT once as client ID; print "ok" or the error code
//	devserver approve CODE      approve a device user code
func cmdDevserver(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: devserver counters|reset|expire|faults JSON|revoke-family RT|refresh RT|approve CODE")
	}
	s := server(ts)
	switch args[0] {
	case "counters":
		b, err := json.MarshalIndent(s.Counters(), "", "  ")
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "%s\n", b)
	case "reset":
		s.ResetCounters()
	case "expire":
		s.ExpireAccessTokens()
	case "stop":
		s.Close()
	case "quirks":
		var q oauthtest.Quirks
		ts.Check(json.Unmarshal([]byte(args[1]), &q))
		s.SetQuirks(q)
	case "faults":
		var f oauthtest.Faults
		ts.Check(json.Unmarshal([]byte(args[1]), &f))
		s.SetFaults(f)
	case "revoke-family":
		s.RevokeFamily(args[1])
	case "approve":
		ts.Check(s.ApproveDevice(args[1]))
	case "refresh":
		md, err := discovery.Fetch(context.Background(), nil, s.URL)
		ts.Check(err)
		client := "latch-cli"
		if len(args) > 2 {
			client = args[2]
		}
		resp, err := http.PostForm(md.TokenEndpoint, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {args[1]}, "client_id": {client},
		})
		ts.Check(err)
		defer resp.Body.Close()
		var r struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		ts.Check(json.NewDecoder(resp.Body).Decode(&r))
		out := r.Error
		if out == "" && r.AccessToken != "" {
			out = "ok"
		}
		fmt.Fprintln(ts.Stdout(), out)
		if neg != (out != "ok") {
			ts.Fatalf("refresh: %s", out)
		}
	default:
		ts.Fatalf("devserver: unknown subcommand %q", args[0])
	}
}

// cmdStoredToken sets env var VAR to a field (access_token or
// refresh_token) of the one credential in the file store, or prints the
// number of stored credentials with "count".
func cmdStoredToken(ts *testscript.TestScript, neg bool, args []string) {
	st := filestore.New(ts.Getenv("LATCH_CONFIG_DIR"))
	keys, err := st.List(context.Background())
	ts.Check(err)
	if len(args) == 1 && args[0] == "count" {
		fmt.Fprintln(ts.Stdout(), len(keys))
		return
	}
	if len(args) == 2 && args[0] == "path" && len(keys) == 1 {
		ts.Setenv(args[1], st.Path(keys[0]))
		return
	}
	if len(args) != 2 {
		ts.Fatalf("usage: storedtoken access_token|refresh_token|path VAR | storedtoken count")
	}
	if len(keys) != 1 {
		ts.Fatalf("want 1 stored credential, have %d", len(keys))
	}
	tok, err := st.Load(context.Background(), keys[0])
	ts.Check(err)
	v := map[string]string{"access_token": tok.AccessToken, "refresh_token": tok.RefreshToken}[args[0]]
	if v == "" {
		ts.Fatalf("stored credential has no %s", args[0])
	}
	ts.Setenv(args[1], v)
}

// cmdResource starts a protected resource on its own origin whose RFC 9728
// metadata names the dev server as its authorization server, and sets the
// variable NAME to its URL. It serves PATH/user (PATH is /v1 unless given):
// with a bearer token the dev server accepts, the dev server's user and
// the resource's name; without, a 401 with a resource_metadata challenge.
// Every request is logged to NAME.log as "METHOD PATH token|no-token".
func cmdResource(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: resource NAME [PATH]")
	}
	name, prefix := args[0], "/v1"
	if len(args) == 2 {
		prefix = args[1]
	}
	as := ts.Value("srv").(*oauthtest.Server).URL
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		auth := r.Header.Get("Authorization")
		tag := "no-token"
		if auth != "" {
			tag = "token"
		}
		if f, err := os.OpenFile(ts.MkAbs(name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintln(f, r.Method, r.URL.Path, tag)
			f.Close()
		}
		switch {
		case r.URL.Path == "/.well-known/oauth-protected-resource"+prefix:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"resource": base + prefix, "authorization_servers": []string{as}})
		case r.URL.Path == prefix+"/user":
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, as+"/v2/user", nil)
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			if auth == "" || resp.StatusCode == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+"/.well-known/oauth-protected-resource"+prefix+`"`)
				http.Error(w, "token required", http.StatusUnauthorized)
				return
			}
			var u map[string]any
			json.NewDecoder(resp.Body).Decode(&u)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"login": u["login"], "resource": name})
		default:
			http.NotFound(w, r)
		}
	}))
	ts.Defer(srv.Close)
	ts.Setenv(name, srv.URL)
}

// cmdFakeAS starts a broken authorization server and sets $FAKEAS to its
// URL. MODE picks the defect: no-token-endpoint, token-not-json,
// token-no-access-token, token-negative-expires, token-echo, device-denied
// (the device grant answered access_denied), wrong-issuer
// (metadata naming another issuer), record
// (a working server that logs each request to authorize.log and
// token.log), record-no-discovery (the same, without discovery).
func cmdFakeAS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: fakeas MODE")
	}
	mode := args[0]
	record := func(name string, v url.Values) {
		f, err := os.OpenFile(ts.MkAbs(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, v.Encode())
			f.Close()
		}
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
			if mode == "record-no-discovery" {
				http.NotFound(w, r)
				return
			}
			md := map[string]any{
				"issuer":                 base,
				"authorization_endpoint": base + "/authorize",
				"token_endpoint":         base + "/token",
			}
			switch mode {
			case "no-token-endpoint":
				delete(md, "token_endpoint")
			case "wrong-issuer":
				md["issuer"] = base + "/tenant"
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(md)
		case "/device":
			_ = r.ParseForm()
			record("device.log", r.PostForm)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"device_code": "fake-device-code", "user_code": "ABCD-EFGH",
				"verification_uri": base + "/verify", "expires_in": 600, "interval": 1})
		case "/revoke":
			_ = r.ParseForm()
			record("revoke.log", r.PostForm)
		case "/authorize":
			q := r.URL.Query()
			record("authorize.log", q)
			u, _ := url.Parse(q.Get("redirect_uri"))
			u.RawQuery = url.Values{"code": {"fake-code"}, "state": {q.Get("state")}}.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
		case "/token":
			switch mode {
			case "record", "record-no-discovery":
				// A working server that writes what it was sent to
				// authorize.log and token.log in $WORK.
				_ = r.ParseForm()
				form := r.PostForm
				if id, sec, ok := r.BasicAuth(); ok {
					form = url.Values{"basic_user": {id}, "basic_secret": {sec}}
					for k, v := range r.PostForm {
						form[k] = v
					}
				}
				record("token.log", form)
				i := n.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"access_token":"fake-at-%d","refresh_token":"fake-rt-%d","token_type":"Bearer","expires_in":3600}`, i, i)
			case "token-not-json":
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html><body>Sign in</body></html>")
			case "token-no-access-token":
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"token_type":"Bearer","expires_in":3600}`)
			case "token-echo":
				// A hostile server: it quotes the refresh token and
				// terminal escapes back in its error text.
				_ = r.ParseForm()
				rt := r.PostForm.Get("refresh_token")
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant",
					"error_description": "refresh token " + rt + " is not valid \x1b]0;pwned\x07\x1b[2J",
					"error_uri":         base + "/errors?token=" + rt})
			case "device-denied":
				// The person said no on the device page (RFC 8628 §3.5).
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"access_denied","error_description":"The user denied the request"}`)
			case "token-negative-expires":
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"access_token":"fake-at","token_type":"Bearer","expires_in":-5}`)
			default:
				http.Error(w, "unknown mode", http.StatusInternalServerError)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	ts.Defer(srv.Close)
	ts.Setenv("FAKEAS", srv.URL)
}

// fakeBrowser is a real HTTP "browser": it GETs the URL given as its
// argument and follows redirects, including to the loopback callback,
// keeping cookies. FAKEBROWSER_MODE=wrong-state rewrites the callback's
// state; FAKEBROWSER_MODE=deny turns it into error=access_denied. The last
// page is saved as browser.html in the current directory.
func fakeBrowser() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakebrowser URL")
		os.Exit(2)
	}
	mode := os.Getenv("FAKEBROWSER_MODE")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := os.Args[1]
	for range 20 {
		u, err := url.Parse(next)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakebrowser:", err)
			os.Exit(1)
		}
		if strings.HasSuffix(u.Path, "/callback") && mode != "" {
			q := u.Query()
			switch mode {
			case "wrong-state":
				q.Set("state", "not-the-state-that-was-sent")
			case "deny":
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("error_description", "The user denied the request")
			}
			u.RawQuery = q.Encode()
		}
		resp, err := c.Get(u.String())
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakebrowser:", err)
			os.Exit(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			ref, err := u.Parse(loc)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fakebrowser:", err)
				os.Exit(1)
			}
			next = ref.String()
			continue
		}
		os.WriteFile("browser.html", body, 0o600)
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "fakebrowser: too many redirects")
	os.Exit(1)
}

// cmdExits runs a program like exec and checks its exact exit code:
//
//	exits CODE PROG ARGS...
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdWriteFile writes its second argument (env-expanded) to a file:
//
//	writefile NAME CONTENT
func cmdWriteFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: writefile NAME CONTENT")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(args[1]+"\n"), 0o600))
}

// cmdExpand replaces ${VAR} and $VAR in each FILE with the script's
// environment, in place:
//
//	expand FILE...
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, name := range args {
		b, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(name), []byte(os.Expand(string(b), ts.Getenv)), 0o600))
	}
}

// cmdFreePort sets env var VAR to a free loopback TCP port.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdWaitHTTP waits (up to 30 s) until URL answers any HTTP status.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(args[0])
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waithttp: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdWaitFile waits (up to 30 s) until PATH exists: a started command
// is ready, however loaded the machine.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		} else if time.Now().After(deadline) {
			ts.Fatalf("waitfile: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdSleep waits for a duration, to let short-lived tokens expire.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}
