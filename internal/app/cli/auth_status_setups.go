package cli

import (
	"context"
	"os"
	"os/exec"
	"strings"

	"go.yaml.in/yaml/v3"
)

// setup is one git, Docker or kubectl setup that gets its token from
// latch: for host and org, or for whatever is selected when org is unset
// (a setup from before setups were bound to their account).
type setup struct {
	host, org string
	orgSet    bool
	what      string
}

type setupList []setup

// bound describes the setups that use host's org; selected says whether
// org is the selected account, which unbound setups follow.
func (l setupList) bound(host, org string, selected bool) []string {
	var out []string
	for _, s := range l {
		switch {
		case s.host != host:
		case s.orgSet && s.org == org:
			out = append(out, s.what)
		case !s.orgSet && selected:
			out = append(out, s.what+" (follows the selected account: run its setup again to bind it)")
		}
	}
	return out
}

// setups finds the setups in the global git config, latch's Docker map
// and the kubeconfig. It reads only; what it cannot read it leaves out.
func (a *App) setups(ctx context.Context) setupList {
	var l setupList
	out, err := exec.CommandContext(ctx, "git", "config", "--global", "--get-regexp", `^credential\..*\.helper$`).Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			_, val, ok := strings.Cut(line, " ")
			if !ok || !strings.HasPrefix(val, "!") {
				continue
			}
			if s, ok := helperSetup(shellWords(val[1:]), "git for "); ok {
				l = append(l, s)
			}
		}
	}
	if cf, err := a.config(); err == nil {
		for reg, r := range cf.Docker {
			// setup-docker records the account, the default one as "".
			l = append(l, setup{host: r.Host, org: r.Org, orgSet: true, what: "docker for " + reg})
		}
	}
	o := &setupKubectlOptions{}
	if path, err := a.kubeconfigPath(o); err == nil {
		l = append(l, kubeSetups(path)...)
	}
	return l
}

// helperSetup reads the login flags of a latch command line.
func helperSetup(args []string, what string) (setup, bool) {
	var s setup
	latch := false
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--host":
			s.host, latch = args[i+1], true
		case "--org":
			s.org, s.orgSet = args[i+1], true
		case "--url":
			what += args[i+1]
		}
	}
	s.what = what
	return s, latch
}

// kubeSetups lists the kubeconfig users whose exec plugin is latch's.
func kubeSetups(path string) []setup {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var kc struct {
		Users []struct {
			Name string `yaml:"name"`
			User struct {
				Exec *kubeExec `yaml:"exec"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if yaml.Unmarshal(b, &kc) != nil {
		return nil
	}
	var l []setup
	for _, u := range kc.Users {
		if e := u.User.Exec; e != nil && len(e.Args) >= 2 && e.Args[len(e.Args)-2] == "credential" && e.Args[len(e.Args)-1] == "kubectl" {
			if s, ok := helperSetup(e.Args, "kubectl user "+u.Name); ok {
				l = append(l, s)
			}
		}
	}
	return l
}

// shellWords splits an sh command line of bare and single-quoted words,
// as setup-git writes them.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in, quoted, escaped := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, in = true, true
		case r == '\\':
			escaped, in = true, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
