package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
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

// TestStepUpOnTerminal runs `latch api --step-up` on a real
// pseudo-terminal: a 403 insufficient_scope for admin logs in again (the
// browser approves) with the held scopes and admin, and the request is
// sent once more; an API that refuses again after that (/v2/mfa always
// does) is passed through, exit 4, after exactly one more login, and the
// step-up's acr_values and max_age are not remembered for later logins.
func TestStepUpOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) (util-linux) to give latch a terminal")
	}
	e := newEnv(t, oauthtest.Options{})
	e.login()
	onTerminal := func(args string) result {
		cmd := exec.Command(scriptBin, "-qec", "'"+latchBin+"' "+args, "/dev/null")
		cmd.Env = e.environ
		return runCmd(t, cmd)
	}
	r := onTerminal("api --step-up /v2/admin")
	if r.code != 0 || !strings.Contains(r.stdout, `"admin": "dev"`) || !strings.Contains(r.stdout, "Logging in again for it (--step-up)") {
		t.Fatalf("step-up for admin: %v", r)
	}
	if c := e.counters(); c.CodeExchanges != 2 {
		t.Errorf("code exchanges = %d, want 2 (the login, the step-up)", c.CodeExchanges)
	}
	if tok := e.stored(); !strings.Contains(" "+tok.Scope+" ", " admin ") {
		t.Errorf("stored scope %q, want admin in it", tok.Scope)
	}
	r = onTerminal("api --step-up /v2/mfa")
	if r.code != 4 || !strings.Contains(r.stdout, "refused the request again after the step-up login") ||
		!strings.Contains(r.stdout, "acr_values=mfa") || !strings.Contains(r.stdout, "max_age=300") {
		t.Fatalf("step-up that does not satisfy: %v", r)
	}
	if c := e.counters(); c.CodeExchanges != 3 {
		t.Errorf("code exchanges = %d, want 3: one step-up for /v2/mfa, never a loop", c.CodeExchanges)
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, "config", "config.json"))
	if strings.Contains(string(b), "acr_values") || strings.Contains(string(b), "max_age") {
		t.Errorf("the step-up's parameters were remembered:\n%s", b)
	}
	// Piped, --step-up says why it does not log in, and names the login.
	if r := e.run("api", "--step-up", "/v2/mfa"); r.code != 4 || !strings.Contains(r.stderr, "only on a terminal") {
		t.Errorf("piped: %v", r)
	}
}
