// Package settings picks what a latch command works on — the host, its
// client, organization, credential store, API URL and credential key —
// from the global flags it was given, the environment and the config
// file, in that order. latch and git-credential-latch both pick through
// it, so the two always hand out the same credential. It also finds
// latch's other programs (Program).
package settings

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/storekit"
)

// Environment variables latch reads. Flags beat them; they beat the
// config file.
const (
	EnvHost     = "LATCH_HOST"
	EnvClientID = "LATCH_CLIENT_ID"
	EnvOrg      = "LATCH_ORG"
	EnvStore    = "LATCH_CREDENTIAL_STORE"
	EnvDebug    = "LATCH_DEBUG"
	EnvToken    = "LATCH_TOKEN"
	// EnvTokenTimeout bounds each token-endpoint request (default 15s).
	EnvTokenTimeout = "LATCH_TOKEN_TIMEOUT"
)

// DefaultClient is the client ID used when none is configured.
const DefaultClient = "latch-cli"

// KeyringService is the keyring service latch's items live under.
const KeyringService = "latch"

// Inputs are what a command was given.
type Inputs struct {
	// Flag returns a global flag's value and whether it was given.
	Flag   func(name string) (string, bool)
	Getenv func(string) string
	Config *config.File
}

// Pick returns the flag's value if it was given, else the environment
// variable's if set, else def.
func (in Inputs) Pick(flag, env, def string) string {
	if in.Flag != nil {
		if v, ok := in.Flag(flag); ok {
			return v
		}
	}
	if v := in.Getenv(env); v != "" {
		return v
	}
	return def
}

// Host returns the host as given (--host, LATCH_HOST, the config's
// selected host), unchecked and unnormalized; "" when there is none.
func (in Inputs) Host() string {
	def := ""
	if in.Config != nil {
		def = in.Config.Host
	}
	return in.Pick("host", EnvHost, def)
}

// Entry returns the config entry for host, or an empty one.
func (in Inputs) Entry(host string) *config.Host {
	if in.Config == nil || in.Config.Get(host) == nil {
		return &config.Host{}
	}
	return in.Config.Get(host)
}

// ClientID returns the OAuth client ID for host.
func (in Inputs) ClientID(host string) string {
	def := in.Entry(host).ClientID
	if def == "" {
		def = DefaultClient
	}
	return in.Pick("client-id", EnvClientID, def)
}

// Org returns the selected organization for host ("" for the default).
func (in Inputs) Org(host string) string {
	return in.Pick("org", EnvOrg, in.Entry(host).Org)
}

// Store returns the credential store asked for (--credential-store,
// LATCH_CREDENTIAL_STORE), else the kind host's login was stored in.
func (in Inputs) Store(host string) string {
	if s := in.Pick("credential-store", EnvStore, ""); s != "" || host == "" {
		return s
	}
	return in.Entry(host).Store
}

// APIURL returns the REST base as given (--api-url, the config file, the
// host), unchecked, without a trailing slash.
func (in Inputs) APIURL(host string) string {
	u := in.Entry(host).APIURL
	if u == "" {
		u = host
	}
	return strings.TrimSuffix(in.Pick("api-url", "", u), "/")
}

// Key returns the key of host's credential for the selected client and
// org, from the issuer cached at login; false when nothing is cached.
func (in Inputs) Key(host string) (credential.Key, bool) {
	md := in.Entry(host).Metadata
	if md == nil || md.Issuer == "" {
		return credential.Key{}, false
	}
	return credential.Key{Issuer: config.Normalize(md.Issuer), ClientID: in.ClientID(host), Account: in.Org(host)}, true
}

// Debug reports whether LATCH_DEBUG asks for the debug log.
func Debug(getenv func(string) string) bool {
	switch strings.ToLower(getenv(EnvDebug)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// RejectedMark is the file that says a tool's server refused
// accessToken (git's and Docker's erase): while it exists, a credential
// helper refreshes instead of handing the token out again.
func RejectedMark(configDir, accessToken string) string {
	return filepath.Join(RejectedDir(configDir), storekit.Fingerprint(accessToken))
}

// RejectedDir holds the rejected marks.
func RejectedDir(configDir string) string { return filepath.Join(configDir, "rejected") }

// Program finds one of latch's programs: beside this one (go install puts
// them together), else on PATH.
func Program(name string) (string, error) {
	if p, ok := Beside(name); ok {
		return p, nil
	}
	return exec.LookPath(name)
}

// Beside returns the path of name in this program's directory, and
// whether an executable file is there.
func Beside(name string) (string, bool) {
	self, err := os.Executable()
	if err != nil {
		return "", false
	}
	p := filepath.Join(filepath.Dir(self), name)
	return p, IsExecutable(p)
}

// IsExecutable reports whether p is an executable file.
func IsExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
