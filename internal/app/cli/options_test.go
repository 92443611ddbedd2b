package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parse runs cmd with args, its RunE handing the options to runF.
func parse(t *testing.T, cmd *cobra.Command, args ...string) {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%s %s: %v", cmd.Name(), strings.Join(args, " "), err)
	}
}

// TestCommandOptions: each command's flags and arguments land in its
// options struct, checked through the runF seam without running it.
func TestCommandOptions(t *testing.T) {
	a := &App{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	a.newRootCmd() // the global flags some commands consult

	var lo *loginOptions
	parse(t, a.newLoginCmd(func(o *loginOptions) error { lo = o; return nil }),
		"--device", "--timeout", "90s", "--scopes", "read,write", "--scopes", "admin", "--client-auth", "basic", "--force")
	if !lo.device || lo.withToken || !lo.force || lo.timeout != 90*time.Second || !reflect.DeepEqual(lo.scopes, []string{"read", "write", "admin"}) || lo.clientAuth != "basic" {
		t.Errorf("login options = %+v", lo)
	}

	var out *logoutOptions
	parse(t, a.newLogoutCmd(func(o *logoutOptions) error { out = o; return nil }), "--all", "--strict")
	if *out != (logoutOptions{all: true, strict: true}) {
		t.Errorf("logout options = %+v", out)
	}

	var so *switchOptions
	parse(t, a.newSwitchCmd(func(o *switchOptions) error { so = o; return nil }), "acme")
	if so.org != "acme" || !so.hasOrg || so.prompt {
		t.Errorf("switch options = %+v (no terminal here, so no prompt)", so)
	}
	parse(t, a.newSwitchCmd(func(o *switchOptions) error { so = o; return nil }))
	if so.hasOrg {
		t.Errorf("switch without ORG: options = %+v", so)
	}

	var st *statusOptions
	parse(t, a.newStatusCmd(func(o *statusOptions) error { st = o; return nil }), "--json")
	if !st.json {
		t.Errorf("status options = %+v", st)
	}

	var to *tokenOptions
	parse(t, a.newTokenCmd(func(o *tokenOptions) error { to = o; return nil }), "--header")
	if !to.header {
		t.Errorf("token options = %+v", to)
	}

	var eo *execOptions
	parse(t, a.newExecCmd(func(o *execOptions) error { eo = o; return nil }), "--env", "TOK", "--header-env", "HDR", "--", "curl", "-s", "--env", "x")
	if eo.env != "TOK" || eo.headerEnv != "HDR" || !reflect.DeepEqual(eo.argv, []string{"curl", "-s", "--env", "x"}) || eo.warnWithin != 10*time.Minute {
		t.Errorf("exec options = %+v (the command's own flags are its own)", eo)
	}

	var po *proxyOptions
	parse(t, a.newProxyCmd(func(o *proxyOptions) error { po = o; return nil }), "--listen", "unix:/tmp/x.sock", "--drain", "2s")
	if po.listen != "unix:/tmp/x.sock" || po.drain != 2*time.Second || po.secretFile != "" {
		t.Errorf("proxy options = %+v", po)
	}

	var gs *setupGitOptions
	parse(t, a.newSetupGitCmd(func(o *setupGitOptions) error { gs = o; return nil }), "https://git.example.com", "--file", "cfg")
	if gs.url != "https://git.example.com" || gs.file != "cfg" || gs.username != "oauth2" {
		t.Errorf("setup-git options = %+v", gs)
	}

	var ds *setupDockerOptions
	parse(t, a.newSetupDockerCmd(func(o *setupDockerOptions) error { ds = o; return nil }), "registry.example.com")
	if ds.registry != "registry.example.com" || ds.username != DefaultDockerUsername {
		t.Errorf("setup-docker options = %+v", ds)
	}

	var ks *setupKubectlOptions
	parse(t, a.newSetupKubectlCmd(func(o *setupKubectlOptions) error { ks = o; return nil }), "--context", "prod", "--print")
	if ks.context != "prod" || !ks.print {
		t.Errorf("setup-kubectl options = %+v", ks)
	}

	var gc *gitCredentialOptions
	parse(t, a.newGitCredentialCmd(func(o *gitCredentialOptions) error { gc = o; return nil }), "get", "--url", "https://git.example.com")
	if gc.op != "get" || gc.url != "https://git.example.com" || gc.username != "oauth2" {
		t.Errorf("credential git options = %+v", gc)
	}

	var kc *kubectlCredentialOptions
	parse(t, a.newKubectlCredentialCmd(func(o *kubectlCredentialOptions) error { kc = o; return nil }))
	if kc == nil {
		t.Error("credential kubectl: runF not called")
	}
}
