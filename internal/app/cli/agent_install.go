package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// agentInstallOptions are the flags of `latch agent install`.
type agentInstallOptions struct {
	agentOptions
	name  string
	print bool
	argv  []string // the agent's command line, built from the flags
}

// agentEnv are the variables an installed agent keeps from the
// environment `install` ran in: what selects the credential and its
// store. Anything holding a password is refused instead.
var agentEnv = []string{EnvConfigDir, EnvHost, EnvOrg, EnvClientID, EnvStore, EnvStoreKeyFile}

// agentPathFlags are the flags whose values are paths, made absolute in
// the unit (a service does not start in this directory).
var agentPathFlags = map[string]bool{"token-file": true, "socket": true}

func (a *App) newAgentInstallCmd(runF func(*agentInstallOptions) error) *cobra.Command {
	o := &agentInstallOptions{}
	c := &cobra.Command{
		Use:   "install [agent flags]",
		Short: "Run the agent as a systemd user service (launchd agent on macOS)",
		Long: `Write a systemd user unit (on macOS a launchd agent) that runs latch agent
with the flags given here and the selected host, org and store, then say
how to start it. The unit names this latch binary and absolute paths; it
holds no secret (a store URL with a password is refused: use a password
file or the server's own mechanism). --print writes the unit to stdout
instead.

The service restarts after a failure, but not after exit 2 (a mistake in
its flags) or 4 (the grant was revoked: log in again, then restart it).`,
		Example: `  latch agent install --keep-alive 12h
  latch agent install --name api-token --token-file /run/user/1000/api-token
  latch agent install --print`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			argv, err := o.agentArgs(cmd)
			if err != nil {
				return usageError(err)
			}
			o.argv = argv
			if runF != nil {
				return runF(o)
			}
			return a.installAgent(o)
		},
	}
	o.flags(c)
	c.Flags().StringVar(&o.name, "name", "latch-agent", "the service's `NAME`")
	c.Flags().BoolVar(&o.print, "print", false, "print the unit instead of writing it")
	return c
}

// agentArgs is the installed agent's command line: this binary, `agent`,
// and every flag given to install but its own.
func (o *agentInstallOptions) agentArgs(cmd *cobra.Command) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return nil, err
	}
	argv := []string{self, "agent"}
	var ferr error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "name", "print", "help", "debug":
			return
		}
		values := []string{f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			values = sv.GetSlice()
		}
		for _, v := range values {
			switch {
			case agentPathFlags[f.Name]:
				v, err = filepath.Abs(v)
			case f.Name == "template":
				v, err = absTemplate(v)
			case f.Name == "credential-store" && urlHasPassword(v) && strings.Contains(v, "://"):
				err = errors.New("--credential-store holds a password, which the unit would keep in plain text; use a password file (PGPASSFILE, or the server's own) instead")
			}
			if err != nil && ferr == nil {
				ferr = err
			}
			if f.Value.Type() == "bool" {
				argv = append(argv, "--"+f.Name+"="+v)
			} else {
				argv = append(argv, "--"+f.Name, v)
			}
		}
	})
	return argv, ferr
}

func absTemplate(spec string) (string, error) {
	src, dest, ok := strings.Cut(spec, "=")
	if !ok {
		return "", fmt.Errorf("--template %q: give SRC=DEST", spec)
	}
	s, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	d, err := filepath.Abs(dest)
	return s + "=" + d, err
}

// unitEnv returns the variables the unit sets, refusing one that holds a
// password.
func (a *App) unitEnv() ([][2]string, error) {
	var env [][2]string
	for _, name := range agentEnv {
		v := a.Getenv(name)
		if v == "" {
			continue
		}
		if name == EnvStore && strings.Contains(v, "://") && urlHasPassword(v) {
			return nil, fmt.Errorf("%s holds a password, which the unit would keep in plain text; use a password file (PGPASSFILE, or the server's own) instead", name)
		}
		if name == EnvConfigDir || name == EnvStoreKeyFile {
			abs, err := filepath.Abs(v)
			if err != nil {
				return nil, err
			}
			v = abs
		}
		env = append(env, [2]string{name, v})
	}
	return env, nil
}

func (a *App) installAgent(o *agentInstallOptions) error {
	if !validUnitName(o.name) {
		return usageError(fmt.Errorf("--name %q: use letters, digits, '-', '_' and '.'", o.name))
	}
	env, err := a.unitEnv()
	if err != nil {
		return usageError(err)
	}
	path, text, start := a.systemdUnit(o, env)
	if runtime.GOOS == "darwin" {
		path, text, start = a.launchdAgent(o, env)
	}
	if o.print {
		fmt.Fprint(a.Stdout, text)
		return nil
	}
	if path == "" {
		return errors.New("cannot tell where the unit goes: HOME is not set")
	}
	verb := "wrote"
	if _, err := os.Stat(path); err == nil {
		verb = "replaced"
	}
	if err := writeFileAtomic(path, []byte(text)); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "%s %s\n\nStart it now and at every login with:\n%s", verb, path, start)
	return nil
}

func validUnitName(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// systemdUnit returns the user unit's path, text and how to start it
// (systemd.service(5); the command line quoted per systemd.syntax(7)).
func (a *App) systemdUnit(o *agentInstallOptions, env [][2]string) (path, text, start string) {
	dir := a.Getenv("XDG_CONFIG_HOME")
	if dir == "" && a.Getenv("HOME") != "" {
		dir = filepath.Join(a.Getenv("HOME"), ".config")
	}
	if dir != "" {
		path = filepath.Join(dir, "systemd", "user", o.name+".service")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=latch agent: keeps an OAuth login alive (%s)\n", o.name)
	b.WriteString("After=network-online.target\n\n[Service]\nType=simple\n")
	for _, kv := range env {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote(kv[0]+"="+kv[1]))
	}
	quoted := make([]string, len(o.argv))
	for i, arg := range o.argv {
		quoted[i] = systemdQuote(arg)
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(quoted, " "))
	b.WriteString("Restart=on-failure\nRestartSec=30\n# 2: a mistake in the flags; 4: the grant was revoked (log in again).\nRestartPreventExitStatus=2 4\n\n[Install]\nWantedBy=default.target\n")
	start = fmt.Sprintf("  systemctl --user daemon-reload\n  systemctl --user enable --now %s\nIts log: journalctl --user -u %s -f\nTo keep it running while you are logged out: loginctl enable-linger\n", o.name, o.name)
	return path, b.String(), start
}

// systemdQuote quotes s as one word of a unit's command line or
// assignment: double quotes with C escapes, and % and $ doubled.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "%", "%%", "$", "$$")
	return `"` + r.Replace(s) + `"`
}

// launchdAgent returns the launchd agent's path, text and how to start
// it (launchd.plist(5)).
func (a *App) launchdAgent(o *agentInstallOptions, env [][2]string) (path, text, start string) {
	label := "dev.latch." + o.name
	home := a.Getenv("HOME")
	if home != "" {
		path = filepath.Join(home, "Library", "LaunchAgents", label+".plist")
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
`)
	fmt.Fprintf(&b, "  <key>Label</key><string>%s</string>\n  <key>ProgramArguments</key>\n  <array>\n", xmlText(label))
	for _, arg := range o.argv {
		fmt.Fprintf(&b, "    <string>%s</string>\n", xmlText(arg))
	}
	b.WriteString("  </array>\n")
	if len(env) > 0 {
		b.WriteString("  <key>EnvironmentVariables</key>\n  <dict>\n")
		for _, kv := range env {
			fmt.Fprintf(&b, "    <key>%s</key><string>%s</string>\n", xmlText(kv[0]), xmlText(kv[1]))
		}
		b.WriteString("  </dict>\n")
	}
	logPath := filepath.Join(home, "Library", "Logs", o.name+".log")
	fmt.Fprintf(&b, "  <key>RunAtLoad</key><true/>\n  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n  <key>ThrottleInterval</key><integer>30</integer>\n  <key>StandardErrorPath</key><string>%s</string>\n</dict>\n</plist>\n", xmlText(logPath))
	start = fmt.Sprintf("  launchctl bootstrap gui/$(id -u) %s\nIts log: %s\n", shellArg(path), logPath)
	return path, b.String(), start
}

func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
