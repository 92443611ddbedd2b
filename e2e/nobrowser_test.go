package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
)

// loginPasting runs `latch ARGS` with env added, waits for the
// authorization URL it prints, and types answer(URL) on its stdin, as a
// person over SSH would after opening the URL elsewhere.
func loginPasting(t *testing.T, e *env, env []string, answer func(authURL string) string, args ...string) (int, string) {
	t.Helper()
	cmd := e.command(args...)
	cmd.Env = append(cmd.Env, env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(b.stderr(), "\n") {
			if u := strings.TrimSpace(l); strings.HasPrefix(u, "http://") && strings.Contains(u, "code_challenge=") {
				fmt.Fprintln(in, answer(u))
				code := b.wait(t, 30*time.Second)
				return code, b.stderr()
			}
		}
		select {
		case <-b.done:
			return b.code, b.stderr()
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no authorization URL printed; stderr:\n%s", b.stderr())
	return 0, ""
}

// redirected approves at the dev server and returns the address the
// browser ends on, without reaching the loopback listener.
func redirected(t *testing.T) func(string) string {
	return func(u string) string {
		to, err := oauthtest.RedirectedTo(context.Background(), u)
		if err != nil {
			t.Errorf("browser: %v", err)
		}
		return to
	}
}

func TestLoginNoBrowser(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	code, stderr := loginPasting(t, e, nil, redirected(t), "auth", "login", "--no-browser")
	if code != 0 || !strings.Contains(stderr, "Then paste here the address the browser ends on") || !strings.Contains(stderr, "Logged in to ") {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "Waiting up to") {
		t.Errorf("--no-browser tried a browser:\n%s", stderr)
	}
	if tok := e.stored(); !tok.Refreshable() {
		t.Errorf("stored %+v, want a refreshable set", tok)
	}
	if c := e.srv.Counters(); c.CodeExchanges != 1 {
		t.Errorf("code exchanges = %d, want 1", c.CodeExchanges)
	}
}

func TestLoginNoBrowserBadPaste(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	var sent string
	code, stderr := loginPasting(t, e, nil, func(u string) string {
		to := redirected(t)(u)
		sent = to
		return strings.Replace(to, "state=", "state=forged", 1)
	}, "auth", "login", "--no-browser")
	if code != 1 || !strings.Contains(stderr, "callback state does not match") {
		t.Errorf("forged state: exit %d; stderr:\n%s", code, stderr)
	}
	code, stderr = loginPasting(t, e, nil, func(string) string { return "no idea" }, "auth", "login", "--no-browser")
	if code != 2 || !strings.Contains(stderr, "is not the redirect URL") {
		t.Errorf("garbage: exit %d; stderr:\n%s", code, stderr)
	}
	if c := e.srv.Counters(); c.CodeExchanges != 0 {
		t.Errorf("code exchanges = %d, want 0", c.CodeExchanges)
	}
	if q := strings.SplitN(sent, "code=", 2); len(q) == 2 && strings.Contains(stderr, strings.SplitN(q[1], "&", 2)[0]) {
		t.Errorf("stderr shows the code")
	}
}

// TestLoginNoBrowserFixedPort: with the registered port forwarded
// (ssh -L), the browser comes back to the listener; nothing is pasted.
func TestLoginNoBrowserFixedPort(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ru := fmt.Sprintf("http://127.0.0.1:%d/callback", port)
	code, stderr := loginPasting(t, e, nil, func(u string) string {
		if err := oauthtest.Browse(context.Background(), u); err != nil {
			t.Errorf("browser: %v", err)
		}
		return "" // a blank line: skipped
	}, "auth", "login", "--no-browser", "--redirect-uri", ru)
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("ssh -L %d:127.0.0.1:%d", port, port)) {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
}

// TestLoginOverSSH: over SSH with no display and no $BROWSER, latch opens
// no browser: it uses the device grant when the server offers one, else
// asks for the address to be pasted back.
func TestLoginOverSSH(t *testing.T) {
	ssh := []string{"BROWSER=", "DISPLAY=", "WAYLAND_DISPLAY=", "SSH_CONNECTION=192.0.2.1 50000 192.0.2.2 22"}
	t.Run("device grant", func(t *testing.T) {
		e := newEnv(t, oauthtest.Options{DeviceApproveAfter: 1, DeviceInterval: time.Second})
		cmd := e.command("auth", "login")
		cmd.Env = append(cmd.Env, ssh...)
		r := runCmd(t, cmd)
		if r.code != 0 || !strings.Contains(r.stderr, "This is an SSH session and no browser can open here: logging in with the device grant") ||
			!strings.Contains(r.stderr, "First copy your one-time code") {
			t.Fatalf("%v", r)
		}
	})
	t.Run("paste", func(t *testing.T) {
		e := newEnv(t, oauthtest.Options{})
		md, err := discovery.Fetch(context.Background(), nil, e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		e.srv.SetQuirks(oauthtest.Quirks{NoDiscovery: true})
		code, stderr := loginPasting(t, e, ssh, redirected(t), "auth", "login", "--auth-url", md.AuthorizationEndpoint, "--token-url", md.TokenEndpoint)
		if code != 0 || !strings.Contains(stderr, "and the server has no device grant: open the URL below on any machine") {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
	})
}
