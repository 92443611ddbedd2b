package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/latchdev/latch/oauthtest"
)

// TestSwitchPickerOnTerminal runs `latch auth switch` on a real
// pseudo-terminal (util-linux's script): with two accounts logged in, it
// asks which one to select and selects the one typed. Piped, it lists.
func TestSwitchPickerOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) (util-linux) to give latch a terminal")
	}
	e := newEnv(t, oauthtest.Options{})
	for _, org := range []string{"acme", "beta"} {
		if r := e.run("--org", org, "auth", "login"); r.code != 0 {
			t.Fatalf("login --org %s: %v", org, r)
		}
	}
	cmd := exec.Command(scriptBin, "-qec", "'"+latchBin+"' auth switch", "/dev/null")
	cmd.Env = e.environ
	cmd.Stdin = strings.NewReader("1\n") // acme, the first login
	r := runCmd(t, cmd)
	if r.code != 0 || !strings.Contains(r.stdout, "Switch to [1-2, Enter keeps beta]") || !strings.Contains(r.stdout, "Switched to org acme") {
		t.Fatalf("on a terminal: %v", r)
	}
	if r := e.run("auth", "switch"); r.code != 0 || r.stdout != "* acme\n  beta\n" || strings.Contains(r.stderr, "Switch to") {
		t.Fatalf("piped, after the pick: %v; want the list with acme selected and no question", r)
	}
}
