//go:build unix

package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/agent"
)

// TestSocketRefusesOtherUser asks as uid 65534 (nobody), through a socket
// whose file mode lets anyone connect, so the peer check alone refuses.
// It needs root to run a process as another user.
func TestSocketRefusesOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to ask as another user; the peer check is tested only where the machine allows a second user")
	}
	dir, err := os.MkdirTemp("", "latch-agent-uid-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "s")
	s, err := agent.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Deliver(token("secret-at", time.Hour))
	os.Chmod(path, 0o777) // only the peer check stands between
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "asker")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"LATCH_AGENT_TEST_ASK=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("asking as uid 65534: %v\n%s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "403 ") || strings.Contains(got, "secret-at") {
		t.Errorf("as another user: %q, want 403 and no token", got)
	}
	if code, body := get(t, s, "/token"); code != 200 || body != "secret-at\n" {
		t.Errorf("as this user: %d %q", code, body)
	}
}
