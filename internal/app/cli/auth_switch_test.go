package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/latchdev/latch/internal/app/config"
)

// TestSwitchPicker: on a terminal, `auth switch` without ORG asks which
// account to select, by number or name; Enter keeps the selection.
func TestSwitchPicker(t *testing.T) {
	const host = "https://auth.example.com"
	for _, tc := range []struct {
		name, answer, want string
		wantOut            string
	}{
		{"by number", "2\n", "acme", "Switched to org acme"},
		{"by name", "beta\n", "beta", "Switched to org beta"},
		{"the default", "1\n", "", "Switched to the default account"},
		{"a wrong answer, then a right one", "9\nacme\n", "acme", `"9" is not one of them`},
		{"enter keeps", "\n", "beta", "Kept beta."},
		{"end of input keeps", "", "beta", "Kept beta."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := config.Update(context.Background(), dir, func(f *config.File) error {
				h := f.Ensure(host)
				h.AddOrg("")
				h.AddOrg("acme")
				h.AddOrg("beta")
				h.Org, f.Host = "beta", host
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			env := map[string]string{EnvConfigDir: dir}
			a := &App{Stdin: strings.NewReader(tc.answer), Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
			a.newRootCmd() // the flags the App reads
			if err := a.switchOrg(context.Background(), &switchOptions{prompt: true}); err != nil {
				t.Fatalf("switch: %v\n%s", err, stderr.String())
			}
			out := stderr.String()
			for _, w := range []string{"1) (default)", "2) acme", "* 3) beta", "Switch to [1-3, Enter keeps beta]", tc.wantOut} {
				if !strings.Contains(out, w) {
					t.Errorf("stderr lacks %q:\n%s", w, out)
				}
			}
			f, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Get(host).Org; got != tc.want {
				t.Errorf("selected org = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSwitchNoPromptLists: without a terminal it lists, and asks nothing.
func TestSwitchNoPromptLists(t *testing.T) {
	const host = "https://auth.example.com"
	dir := t.TempDir()
	config.Update(context.Background(), dir, func(f *config.File) error {
		h := f.Ensure(host)
		h.AddOrg("acme")
		h.AddOrg("beta")
		h.Org, f.Host = "acme", host
		return nil
	})
	var stdout, stderr bytes.Buffer
	env := map[string]string{EnvConfigDir: dir}
	a := &App{Stdin: strings.NewReader("2\n"), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	a.newRootCmd()
	if err := a.switchOrg(context.Background(), &switchOptions{}); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "* acme\n  beta\n" || strings.Contains(stderr.String(), "Switch to") {
		t.Errorf("stdout %q, stderr %q; want the list and no question", stdout.String(), stderr.String())
	}
}
