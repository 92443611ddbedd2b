package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the sh code block that follows the marker
// <!-- quickstart:NAME --> in the README.
func readmeBlock(t *testing.T, readme, name string) string {
	t.Helper()
	re := regexp.MustCompile("(?s)<!-- quickstart:" + name + " -->\\s*```sh\n(.*?)```")
	m := re.FindStringSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no quickstart:%s block", name)
	}
	return m[1]
}

// TestReadmeQuickStart runs the README's quick start as written: the
// server block in the background, then the client block in sh -e, with
// the three programs installed as the README's Install section does (on
// PATH) and a fresh HOME, so a command that no longer works as written
// fails here.
func TestReadmeQuickStart(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	server := strings.TrimSpace(readmeBlock(t, readme, "server"))
	client := readmeBlock(t, readme, "client")
	addr := regexp.MustCompile(`--port ([0-9]+)`).FindStringSubmatch(server)
	if addr == nil {
		t.Fatalf("the quick start's server line %q names no --port", server)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+addr[1]); err != nil {
		t.Fatalf("the quick start's port %s is in use on this machine: %v", addr[1], err)
	} else {
		ln.Close()
	}

	bin := filepath.Dir(latchBin)
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "latch-dev"), "github.com/latchdev/latch/cmd/latch-dev")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build latch-dev: %v\n%s", err, out)
	}
	home := t.TempDir()
	environ := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		// No session bus: credentials go to the 0600 file, not to the
		// keyring of whoever runs the tests.
		"DBUS_SESSION_BUS_ADDRESS=",
		"NO_COLOR=1",
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, "sh", "-c", "exec "+server)
	srv.Env = environ
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGINT)
		_ = srv.Wait()
	}()
	base := "http://127.0.0.1:" + addr[1]
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the quick start's server did not come up: %v\n%s", err, srvOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	cmd := exec.CommandContext(ctx, "sh", "-e", "-x", "-c", client)
	cmd.Env, cmd.Dir = environ, home
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start failed as written: %v\n%s", err, masked(out))
	}
	for _, want := range []string{
		"Logged in to " + base + " as dev",
		`{"data":{"viewer":{"login":"dev"}}}`,
		`"login":"dev"`,
		"username=oauth2",
		"password=",
		"git now gets a fresh token from latch",
		"git no longer asks latch",
		"Logged out",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, masked(out))
		}
	}
}

// masked is the quick start's output with the token git was given
// (password=…) hidden, so a failing run's log shows no token.
func masked(out []byte) string {
	return regexp.MustCompile(`(?m)^(password|credential)=.*$`).ReplaceAllString(string(out), "$1=****")
}
