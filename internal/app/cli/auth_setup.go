package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/fastcred"
	"github.com/latchdev/latch/internal/app/gitcred"
	"github.com/latchdev/latch/internal/app/settings"
)

// selfPath is how other programs should run this latch: the path it was
// started by, not resolved through symlinks (a link named latch is latch).
func selfPath() (string, error) {
	p := os.Args[0]
	if !strings.ContainsRune(p, filepath.Separator) {
		lp, err := exec.LookPath(p)
		if err != nil {
			return os.Executable()
		}
		p = lp
	}
	return filepath.Abs(p)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// loginArgs are the global flags that bind a helper to this login: the
// host and the account, the default one too (an empty --org), so a later
// `auth switch` does not change whom git, Docker or kubectl act for.
func (a *App) loginArgs(host string) []string {
	args := []string{"--host", host, "--org", a.Org(host)}
	if a.flagSet("client-id") || a.Getenv(EnvClientID) != "" {
		args = append(args, "--client-id", a.ClientID(host))
	}
	return args
}

// --- git ------------------------------------------------------------------------

type setupGitOptions struct {
	url      string
	username string
	file     string
	remove   bool
}

// newSetupGitCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newSetupGitCmd(runF func(*setupGitOptions) error) *cobra.Command {
	o := &setupGitOptions{}
	c := &cobra.Command{
		Use:   "setup-git [GIT_URL]",
		Short: "Make git use this login for one git server",
		Long: `Add latch as a credential helper for the git server at GIT_URL (default:
the host's API URL) in your global git config (or --file), bound to the
selected host and account (the default one too): a later auth switch does
not change it; run setup-git again to bind it to another. Other helpers
are left as they are; latch answers only for GIT_URL's origin. Running it
again replaces latch's own entry; --remove deletes it (logout does not).
When git-credential-latch is installed beside latch, the entry runs it: a
small program that starts in half the time, answers from a valid stored
token and hands everything else (a refresh, erase) to latch.`,
		Example: `  latch auth setup-git https://git.example.com
  latch --host https://gitlab.com auth setup-git https://gitlab.com --username oauth2
  git clone https://git.example.com/team/repo.git
  latch auth setup-git --remove https://git.example.com`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.url = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			if o.remove {
				return a.removeGit(cmd.Context(), o)
			}
			return a.setupGit(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.username, "username", "oauth2", "the username git sends with the token")
	c.Flags().StringVar(&o.file, "file", "", "write to this git config `FILE` instead of the global one")
	c.Flags().BoolVar(&o.remove, "remove", false, "remove latch's helper entry for GIT_URL instead")
	return c
}

// gitHelperPattern matches latch's own helper entries (a git config value
// pattern), and no other helper's.
const gitHelperPattern = `^!.*( credential git|` + gitcred.HelperName + `'?)( |$)`

// removeGit undoes setupGit: it deletes latch's helper entries for the
// URL and nothing else.
func (a *App) removeGit(ctx context.Context, o *setupGitOptions) error {
	u := o.url
	if u == "" {
		var err error
		if u, err = a.APIURL(ctx); err != nil {
			return err
		}
	}
	u = strings.TrimSuffix(u, "/")
	key := "credential." + u + ".helper"
	args := []string{"config"}
	where := "your global git config"
	if o.file != "" {
		args, where = append(args, "--file", o.file), o.file
	} else {
		args = append(args, "--global")
	}
	cmd := exec.CommandContext(ctx, "git", append(args, "--unset-all", key, gitHelperPattern)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return usageError(errors.New("git is not installed (or not on PATH)"))
	case errors.As(err, &ee) && ee.ExitCode() == 5:
		// git config: no such key or value (git-config(1) exit 5).
		fmt.Fprintf(a.Stderr, "latch had no helper entry for %s in %s; nothing changed.\n", u, where)
		return nil
	case err != nil:
		return fmt.Errorf("git config: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// The empty helper setup-git put first goes too once nothing else is
	// left for this URL, so the global helpers apply to it again.
	if out, err := exec.CommandContext(ctx, "git", append(args, "--get-all", key)...).Output(); err == nil && strings.TrimSpace(string(out)) == "" {
		_ = exec.CommandContext(ctx, "git", append(args, "--unset-all", key, "^$")...).Run()
	}
	fmt.Fprintf(a.Stderr, "Removed latch's %s from %s; git no longer asks latch for %s.\n", key, where, u)
	return nil
}

func (a *App) setupGit(ctx context.Context, o *setupGitOptions) error {
	host, err := a.Host()
	if err != nil {
		return err
	}
	u := o.url
	if u == "" {
		if u, err = a.APIURL(ctx); err != nil {
			return err
		}
	}
	if err := tokenDestination("git URL", u); err != nil {
		return err
	}
	u = strings.TrimSuffix(u, "/")
	self, err := selfPath()
	if err != nil {
		return err
	}
	// git runs its helper for nearly every request: use the small one
	// when it was installed with this latch.
	fast := filepath.Join(filepath.Dir(self), gitcred.HelperName)
	small := settings.IsExecutable(fast)
	parts := []string{shellQuote(self)}
	if small {
		parts = []string{shellQuote(fast)}
	}
	for _, arg := range a.loginArgs(host) {
		parts = append(parts, shellQuote(arg))
	}
	if !small {
		parts = append(parts, "credential", "git")
	}
	parts = append(parts, "--url", shellQuote(u))
	if o.username != "oauth2" {
		parts = append(parts, "--username", shellQuote(o.username))
	}
	helper := "!" + strings.Join(parts, " ")
	key := "credential." + u + ".helper"
	scope := []string{"--global"}
	if o.file != "" {
		scope = []string{"--file", o.file}
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append(append([]string{"config"}, scope...), args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return "", usageError(errors.New("git is not installed (or not on PATH)"))
		case errors.As(err, &ee) && (ee.ExitCode() == 1 || ee.ExitCode() == 5):
			return "", nil // no such key, or nothing to unset
		case err != nil:
			return "", fmt.Errorf("git config: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), nil
	}
	// The helper list for this URL: an empty helper first, which resets
	// the list (so a global credential.helper such as store never saves
	// latch's token in plaintext and answers with it later; git before
	// 2.46 ignores ephemeral), then latch, then the user's own helpers
	// for this URL. latch's old entry is replaced.
	old, err := git("--get-all", key)
	if err != nil {
		return err
	}
	own := regexp.MustCompile(gitHelperPattern)
	values := []string{"", helper}
	for _, v := range strings.Split(strings.TrimSuffix(old, "\n"), "\n") {
		if v != "" && !own.MatchString(v) {
			values = append(values, v)
		}
	}
	if _, err := git("--unset-all", key); err != nil {
		return err
	}
	for _, v := range values {
		if _, err := git("--add", key, v); err != nil {
			return err
		}
	}
	where := "your global git config"
	if o.file != "" {
		where = o.file
	}
	fmt.Fprintf(a.Stderr, "Set %s in %s, after an empty helper that resets the list for this URL, so no other helper (a global credential.helper such as store) is asked or saves the token.\ngit now gets a fresh token from latch (%s%s) for %s.\n", key, where, host, orgSuffix(a.Org(host)), u)
	return nil
}

// --- docker ---------------------------------------------------------------------

type setupDockerOptions struct {
	registry string
	username string
	remove   bool
}

// newSetupDockerCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newSetupDockerCmd(runF func(*setupDockerOptions) error) *cobra.Command {
	o := &setupDockerOptions{}
	c := &cobra.Command{
		Use:   "setup-docker REGISTRY",
		Short: "Make Docker use this login for one registry",
		Long: `Map REGISTRY (host[:port]) to the selected host and org, add
"credHelpers": {"REGISTRY": "latch"} to Docker's config.json ($DOCKER_CONFIG,
default ~/.docker; other entries are kept). Docker runs docker-credential-latch:
the small helper installed beside latch (it answers from a valid stored
token and hands everything else to latch), else a link to this latch,
which it makes beside it, or says how to when that directory is not writable.
The mapping is bound to the selected host and account (the default one
too): a later auth switch does not change it. --remove deletes the mapping
and latch's credHelpers entry (logout does not).`,
		Example: `  latch --host https://auth.example.com auth setup-docker registry.example.com
  docker pull registry.example.com/team/app:latest
  latch auth setup-docker --remove registry.example.com`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.registry = args[0]
			if runF != nil {
				return runF(o)
			}
			if o.remove {
				return a.removeDocker(cmd.Context(), o)
			}
			return a.setupDocker(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.username, "username", DefaultDockerUsername, "the username Docker sends with the token")
	c.Flags().BoolVar(&o.remove, "remove", false, "remove the registry's mapping and latch's credHelpers entry instead")
	return c
}

// dockerConfigPath is Docker's config.json: $DOCKER_CONFIG, else ~/.docker.
func (a *App) dockerConfigPath() (string, error) {
	dir := a.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home := a.Getenv("HOME")
		if home == "" {
			return "", usageError(errors.New("neither DOCKER_CONFIG nor HOME is set"))
		}
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, "config.json"), nil
}

// removeDocker undoes setupDocker for one registry.
func (a *App) removeDocker(ctx context.Context, o *setupDockerOptions) error {
	reg := registryKey(o.registry)
	if reg == "" {
		return usageError(fmt.Errorf("registry %q: want host[:port]", o.registry))
	}
	if err := a.updateConfig(ctx, func(f *config.File) error {
		delete(f.Docker, reg)
		return nil
	}); err != nil {
		return err
	}
	path, err := a.dockerConfigPath()
	if err != nil {
		return err
	}
	if err := editDockerConfig(path, reg, false); err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "Docker no longer asks latch for %s (removed from latch's config and the credHelpers in %s).\n", reg, path)
	return nil
}

func (a *App) setupDocker(ctx context.Context, o *setupDockerOptions) error {
	host, err := a.Host()
	if err != nil {
		return err
	}
	reg := registryKey(o.registry)
	if reg == "" || strings.ContainsAny(reg, " \t\"") {
		return usageError(fmt.Errorf("registry %q: want host[:port]", o.registry))
	}
	entry := &config.DockerRegistry{Host: host, Org: a.Org(host)}
	if o.username != DefaultDockerUsername {
		entry.Username = o.username
	}
	if err := a.updateConfig(ctx, func(f *config.File) error {
		if f.Docker == nil {
			f.Docker = map[string]*config.DockerRegistry{}
		}
		f.Docker[reg] = entry
		return nil
	}); err != nil {
		return err
	}
	path, err := a.dockerConfigPath()
	if err != nil {
		return err
	}
	if err := editDockerConfig(path, reg, true); err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "Docker now gets a fresh token from latch (%s%s) for %s (credHelpers in %s).\n",
		host, orgSuffix(entry.Org), reg, path)
	self, err := selfPath()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(DockerHelperName); err == nil {
		return nil
	}
	link := filepath.Join(filepath.Dir(self), DockerHelperName)
	if settings.IsExecutable(link) {
		// The small helper, installed with this latch.
		fmt.Fprintf(a.Stderr, "Docker runs %s, which is not on PATH: put %s on PATH.\n", DockerHelperName, filepath.Dir(link))
		return nil
	}
	if err := os.Symlink(self, link); err != nil && !errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(a.Stderr, "Docker runs %s, which is not on PATH: run\n  ln -s %s /usr/local/bin/%s\n", DockerHelperName, self, DockerHelperName)
		return nil
	}
	fmt.Fprintf(a.Stderr, "Linked %s -> %s", link, self)
	if _, err := exec.LookPath(DockerHelperName); err != nil {
		fmt.Fprintf(a.Stderr, "; put %s on PATH", filepath.Dir(link))
	}
	fmt.Fprintln(a.Stderr, ".")
	return nil
}

// editDockerConfig sets credHelpers[reg] = "latch" in Docker's config
// file (or, with set false, deletes latch's entry for reg), keeping
// everything else, written atomically with mode 0600.
func editDockerConfig(path, reg string, set bool) error {
	doc := map[string]any{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read Docker config: %w", err)
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return usageError(fmt.Errorf("the Docker config %s is not JSON; fix it, then run this again", path))
		}
	}
	helpers, _ := doc["credHelpers"].(map[string]any)
	if helpers == nil {
		helpers = map[string]any{}
	}
	if set {
		helpers[reg] = "latch"
	} else if helpers[reg] == "latch" {
		delete(helpers, reg)
	} else {
		return nil
	}
	doc["credHelpers"] = helpers
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(out, '\n'))
}

// --- kubectl ---------------------------------------------------------------------

type setupKubectlOptions struct {
	context    string
	user       string
	cluster    string
	kubeconfig string
	print      bool
	remove     bool
}

// newSetupKubectlCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newSetupKubectlCmd(runF func(*setupKubectlOptions) error) *cobra.Command {
	o := &setupKubectlOptions{}
	c := &cobra.Command{
		Use:   "setup-kubectl --context NAME",
		Short: "Make kubectl use this login for one context",
		Long: `Add a kubeconfig user whose token comes from latch credential kubectl (an
exec credential plugin, bound to the selected host and org) and point
context NAME at it; with --cluster, create the context if it is missing.
The kubeconfig is --kubeconfig, else the first file in $KUBECONFIG, else
~/.kube/config; everything else in it is kept, comments included, and it
is written atomically with mode 0600 (through the link when it is a
symlink). When kube-credential-latch is installed beside latch, the stanza
runs it with the same arguments: a small program that answers from a valid
stored token and hands everything else to latch. --print prints the users[]
stanza instead of changing anything.
The user is bound to the selected host and account (the default one too):
a later auth switch does not change it. --remove deletes the user and the
context's reference to it (logout does not).`,
		Example: `  latch --host https://auth.example.com auth setup-kubectl --context prod
  kubectl --context prod get pods
  latch auth setup-kubectl --context prod --print
  latch auth setup-kubectl --context prod --remove`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return a.setupKubectl(o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.context, "context", "", "the kubeconfig context to use this login (required)")
	f.StringVar(&o.user, "user", "", "the kubeconfig user entry to write (default: latch-CONTEXT)")
	f.StringVar(&o.cluster, "cluster", "", "create the context for this cluster when it does not exist")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "the kubeconfig `FILE`")
	f.BoolVar(&o.print, "print", false, "print the users[] stanza instead of changing the kubeconfig")
	f.BoolVar(&o.remove, "remove", false, "remove latch's user for the context instead")
	return c
}

// kubeconfigPath is --kubeconfig, else the first file in $KUBECONFIG,
// else ~/.kube/config.
func (a *App) kubeconfigPath(o *setupKubectlOptions) (string, error) {
	switch {
	case o.kubeconfig != "":
		return o.kubeconfig, nil
	case a.Getenv("KUBECONFIG") != "":
		return filepath.SplitList(a.Getenv("KUBECONFIG"))[0], nil
	case a.Getenv("HOME") != "":
		return filepath.Join(a.Getenv("HOME"), ".kube", "config"), nil
	}
	return "", usageError(errors.New("no kubeconfig: pass --kubeconfig"))
}

// removeKubectl undoes setupKubectl: it deletes the user and unsets the
// context's user when it names it.
func (a *App) removeKubectl(o *setupKubectlOptions) error {
	user := o.user
	if user == "" {
		user = "latch-" + o.context
	}
	path, err := a.kubeconfigPath(o)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return usageError(fmt.Errorf("kubeconfig %s is not a YAML mapping; fix it, then run this again", path))
	}
	root := doc.Content[0]
	found := false
	if users := valueOf(root, "users"); users != nil && users.Kind == yaml.SequenceNode {
		kept := users.Content[:0]
		for _, it := range users.Content {
			if n := valueOf(it, "name"); n != nil && n.Value == user {
				found = true
				continue
			}
			kept = append(kept, it)
		}
		users.Content = kept
	}
	if contexts := valueOf(root, "contexts"); contexts != nil {
		if item := namedItem(contexts, o.context); item != nil {
			if c := valueOf(item, "context"); c != nil && c.Kind == yaml.MappingNode {
				if u := valueOf(c, "user"); u != nil && u.Value == user {
					u.Value = ""
				}
			}
		}
	}
	if !found {
		fmt.Fprintf(a.Stderr, "%s has no user %s; nothing changed.\n", path, user)
		return nil
	}
	out, err := marshalYAML(&doc)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, out); err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "Removed user %s from %s; context %s no longer gets a token from latch.\n", user, path, o.context)
	return nil
}

func (a *App) setupKubectl(o *setupKubectlOptions) error {
	if o.context == "" {
		return usageError(errors.New("--context is required"))
	}
	if o.remove {
		return a.removeKubectl(o)
	}
	host, err := a.Host()
	if err != nil {
		return err
	}
	user := o.user
	if user == "" {
		user = "latch-" + o.context
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	// v1beta1: every kubectl since 1.11 reads it, and it needs no
	// interactiveMode; latch answers v1 too when client-go asks for it.
	// kubectl runs the plugin for every command whose cached token ran
	// out: use the small one when it was installed with this latch. It
	// takes latch's own arguments, so the stanza differs only in Command.
	if fast := filepath.Join(filepath.Dir(self), fastcred.KubeName); settings.IsExecutable(fast) {
		self = fast
	}
	exec := kubeExec{APIVersion: execCredentialV1beta1, Command: self,
		Args: append(a.loginArgs(host), "credential", "kubectl"), InteractiveMode: "Never"}
	if o.print {
		b, err := marshalYAML(map[string]any{"users": []any{map[string]any{"name": user, "user": map[string]any{"exec": exec}}}})
		if err != nil {
			return err
		}
		_, err = a.Stdout.Write(b)
		return err
	}
	path, err := a.kubeconfigPath(o)
	if err != nil {
		return err
	}
	known, err := editKubeconfig(path, o.context, user, o.cluster, exec)
	if err != nil {
		return err
	}
	if o.cluster != "" && !known {
		fmt.Fprintf(a.Stderr, "latch: warning: %s has no cluster %q; add it (kubectl config set-cluster %s --server URL) before using context %s.\n",
			path, o.cluster, shellQuote(o.cluster), o.context)
	}
	fmt.Fprintf(a.Stderr, "kubectl context %s now gets a fresh token from latch (%s%s), as user %s in %s.\n",
		o.context, host, orgSuffix(a.Org(host)), user, path)
	return nil
}

// kubeExec is a kubeconfig user's exec stanza (client-go ExecConfig).
type kubeExec struct {
	APIVersion      string   `yaml:"apiVersion"`
	Command         string   `yaml:"command"`
	Args            []string `yaml:"args"`
	InteractiveMode string   `yaml:"interactiveMode"`
}

// editKubeconfig upserts users[user].user.exec and points contexts[ctx]
// at user (creating it for cluster when asked), keeping the rest; known
// reports whether the kubeconfig has a cluster named cluster.
func editKubeconfig(path, ctx, user, cluster string, exec kubeExec) (known bool, err error) {
	var doc yaml.Node
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b = []byte("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: \"\"\n")
	case err != nil:
		return false, fmt.Errorf("read kubeconfig: %w", err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false, usageError(fmt.Errorf("kubeconfig %s is not a YAML mapping; fix it, then run this again", path))
	}
	root := doc.Content[0]
	var stanza yaml.Node
	if err := stanza.Encode(map[string]any{"exec": exec}); err != nil {
		return false, err
	}
	if cs := valueOf(root, "clusters"); cs != nil && cluster != "" {
		known = namedItem(cs, cluster) != nil
	}
	users := mappingSeq(root, "users")
	if item := namedItem(users, user); item != nil {
		setKey(item, "user", &stanza)
	} else {
		var n yaml.Node
		_ = n.Encode(map[string]any{"name": user})
		setKey(&n, "user", &stanza)
		users.Content = append(users.Content, &n)
	}
	contexts := mappingSeq(root, "contexts")
	item := namedItem(contexts, ctx)
	if item == nil {
		if cluster == "" {
			return false, usageError(fmt.Errorf("kubeconfig %s has no context %q: pass --cluster CLUSTER to create it", path, ctx))
		}
		item = &yaml.Node{}
		_ = item.Encode(map[string]any{"name": ctx, "context": map[string]string{"cluster": cluster}})
		contexts.Content = append(contexts.Content, item)
	}
	c := valueOf(item, "context")
	if c == nil || c.Kind != yaml.MappingNode {
		c = &yaml.Node{Kind: yaml.MappingNode}
		setKey(item, "context", c)
	}
	setKey(c, "user", &yaml.Node{Kind: yaml.ScalarNode, Value: user})
	out, err := marshalYAML(&doc)
	if err != nil {
		return false, err
	}
	return known, writeFileAtomic(path, out)
}

// marshalYAML writes v as kubectl does: two-space indents, lists not
// indented under their key.
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mappingSeq returns the sequence under key in m, creating it.
func mappingSeq(m *yaml.Node, key string) *yaml.Node {
	if v := valueOf(m, key); v != nil && v.Kind == yaml.SequenceNode {
		v.Style = 0 // "users: []" becomes a block list
		return v
	}
	v := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	setKey(m, key, v)
	return v
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

func namedItem(seq *yaml.Node, name string) *yaml.Node {
	for _, it := range seq.Content {
		if n := valueOf(it, "name"); it.Kind == yaml.MappingNode && n != nil && n.Value == name {
			return it
		}
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory (mode 0600, directory 0700 when created), synced and renamed.
// A symlink is written through, as kubectl and docker do, so the file a
// dotfiles repository links to gets the change and the link stays.
func writeFileAtomic(path string, b []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
