package latch_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryImportsNoApplication keeps the floors apart: the root package,
// every store, login flow and test kit, and their own dependencies, import
// nothing from the application (internal/app: the commands, the demo,
// the dev command, chaos, and the helpers only they use).
func TestLibraryImportsNoApplication(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod, app = "github.com/latchdev/latch", "github.com/latchdev/latch/internal/app"
	var lib []string
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == app || strings.HasPrefix(p, app+"/"),
			strings.HasPrefix(p, mod+"/cmd/"), strings.HasPrefix(p, mod+"/e2e"), strings.HasPrefix(p, mod+"/bench"):
			continue // the application and what tests or measures it
		}
		lib = append(lib, p)
	}
	if len(lib) < 15 {
		t.Fatalf("found %d library packages, want every one: %q", len(lib), lib)
	}
	args := append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}"}, lib...)
	deps, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if d == app || strings.HasPrefix(d, app+"/") {
			// Name the importer.
			who, _ := exec.Command("go", "list", "-deps", "-test", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "./...").Output()
			for _, l := range strings.Split(string(who), "\n") {
				if strings.Contains(l, " "+d) && !strings.HasPrefix(l, app) {
					t.Logf("%s", l)
				}
			}
			t.Errorf("a library package depends on the application package %s", d)
		}
	}
}

// TestSmallHelpersLinkNoHTTP keeps the small helpers small: git, Docker
// and kubectl start one for nearly every request, and linking net/http,
// crypto/tls and x/oauth2 (through the root package or discovery) made
// each start 1.4× slower. They read the config and the stored token
// through credential and endpoint, and hand all else to latch.
func TestSmallHelpersLinkNoHTTP(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	const mod = "github.com/latchdev/latch"
	banned := []string{"net/http", "crypto/tls", "golang.org/x/oauth2", mod, mod + "/discovery"}
	for _, cmd := range []string{"git-credential-latch", "docker-credential-latch", "kube-credential-latch"} {
		out, err := exec.Command("go", "list", "-deps", "./cmd/"+cmd).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", cmd, err)
		}
		deps := strings.Fields(string(out))
		for _, b := range banned {
			for _, d := range deps {
				if d == b {
					why, _ := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "./cmd/"+cmd).Output()
					for _, l := range strings.Split(string(why), "\n") {
						if strings.Contains(l+" ", " "+b+" ") {
							t.Logf("%s", l)
						}
					}
					t.Errorf("%s links %s", cmd, b)
				}
			}
		}
	}
}
