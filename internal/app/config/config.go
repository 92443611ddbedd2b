// Package config reads and writes the latch CLI's configuration file: the
// hosts a user logged in to, their organizations, and which is selected.
// Credentials are not kept here; they live in the credential store.
package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/latchdev/latch/endpoint"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// EnvDir names the environment variable that overrides Dir.
const EnvDir = "LATCH_CONFIG_DIR"

// FileName is the configuration file's name inside the config directory.
const FileName = "config.json"

// Dir returns $LATCH_CONFIG_DIR if set, else $XDG_CONFIG_HOME/latch, else
// ~/.config/latch, on every Unix including macOS, as gh does: the place
// terminal users keep dotfiles. This is the CLI's rule, and the CLI hands
// the directory to the libraries (credstore.Options.Dir); their own
// default for other programs, filestore.DefaultDir, is
// os.UserConfigDir's. getenv reads the environment.
func Dir(getenv func(string) string) (string, error) {
	if d := getenv(EnvDir); d != "" {
		return d, nil
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "latch"), nil
	}
	home := getenv("HOME")
	if home == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find config directory: %w (set %s)", err, EnvDir)
		}
		return filepath.Join(d, "latch"), nil
	}
	return filepath.Join(home, ".config", "latch"), nil
}

// File is the configuration file's content.
type File struct {
	// Host is the selected host (an issuer URL).
	Host  string           `json:"host,omitempty"`
	Hosts map[string]*Host `json:"hosts,omitempty"`
	// Docker maps container registries (host[:port]) to the latch login
	// whose token `latch credential docker` gives them.
	Docker map[string]*DockerRegistry `json:"docker,omitempty"`

	path string
}

// Host is what latch remembers about one authorization server.
type Host struct {
	ClientID   string   `json:"client_id,omitempty"`
	Org        string   `json:"org,omitempty"`  // selected organization
	Orgs       []string `json:"orgs,omitempty"` // organizations logged in to
	APIURL     string   `json:"api_url,omitempty"`
	GraphQLURL string   `json:"graphql_url,omitempty"`
	// AuthServer is the authorization server of a login made for a
	// resource (RFC 9728), when it is not the entry's own URL: the entry
	// is then named by the resource, and discovery and every token
	// request go to AuthServer.
	AuthServer string `json:"authorization_server,omitempty"`
	// Resource is the protected resource the login was made for (RFC
	// 9728, RFC 8707); it is the login's API.
	Resource string `json:"resource,omitempty"`
	// Store is the credential store kind that holds this host's
	// credentials ("keyring" or "file").
	Store string `json:"store,omitempty"`
	// Metadata caches the server's endpoints (RFC 8414 §2), so a command
	// whose token is valid needs no network round trip.
	Metadata *endpoint.Metadata `json:"metadata,omitempty"`

	// Login settings, given once to `auth login` and used by every later
	// command and login for this host.
	// An empty list (not nil) asks for no scope at all.
	Scopes []string `json:"scopes,omitzero"`
	// Params go with the authorization and every token request: an
	// audience, RFC 8707 resource indicators, any --param.
	Params map[string][]string `json:"params,omitempty"`
	// Endpoints given by flags, for servers without discovery; they
	// override what discovery finds.
	Endpoints *Endpoints `json:"endpoints,omitempty"`
	// ClientAuth is how the client authenticates at the token endpoint:
	// client_secret_basic, client_secret_post or none (RFC 8414 §2). The
	// secret itself is kept with the credential, never here.
	ClientAuth string `json:"client_auth,omitempty"`
	// KeepReplaced: a login does not revoke the session it replaces,
	// because this server revokes the whole grant, the new login's too.
	KeepReplaced bool `json:"keep_replaced,omitempty"`
	// ClientSecretFrom is where the last login was given the client
	// secret: "file:PATH" or "env:NAME", so a re-login finds it there.
	// The secret itself is never here.
	ClientSecretFrom string `json:"client_secret_from,omitempty"`
	// RedirectURI is the fixed loopback redirect URI the client is
	// registered with; "" means 127.0.0.1 on a free port.
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Registration is the client latch registered for itself (RFC 7591),
	// reused by every later login; ClientID holds its id.
	Registration *Registration `json:"registration,omitempty"`
	// Grant is the grant a workload login (Grant.ClientID, Grant.Org)
	// renews its token with, which has no refresh token.
	Grant *Grant `json:"grant,omitempty"`
}

// Grant types a workload login remembers.
const (
	GrantClientCredentials = "client_credentials" // RFC 6749 §4.4
	GrantTokenExchange     = "token_exchange"     // RFC 8693
)

// Grant is how a workload login obtains its token again: where its
// inputs are, never the inputs (a key, a subject token).
type Grant struct {
	Type string `json:"type"`
	// ClientID and Org are the login the grant renews: a host's other
	// logins (another --org, a person's) are not renewed with it.
	ClientID string `json:"client_id,omitempty"`
	Org      string `json:"org,omitempty"`
	// PrivateKeyFile is the PEM key a client credentials grant signs its
	// assertion with (RFC 7523 §2.2); KeyID its kid. Without it the
	// client's secret authenticates (Host.ClientSecretFrom).
	PrivateKeyFile string `json:"private_key_file,omitempty"`
	KeyID          string `json:"key_id,omitempty"`
	// SubjectTokenFile is read anew for every exchange (a Kubernetes
	// projected token is rotated in place); GitHubActions fetches the
	// job's OIDC token from the runner instead, for SubjectAudience.
	SubjectTokenFile string `json:"subject_token_file,omitempty"`
	GitHubActions    bool   `json:"github_actions,omitempty"`
	SubjectAudience  string `json:"subject_audience,omitempty"`
	SubjectTokenType string `json:"subject_token_type,omitempty"`
}

// Registration records a dynamic client registration (RFC 7591 §3.2.1).
type Registration struct {
	Endpoint string    `json:"endpoint"`
	ClientID string    `json:"client_id"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
}

// DockerRegistry is the login a registry gets its token from.
type DockerRegistry struct {
	Host     string `json:"host"`
	Org      string `json:"org,omitempty"`
	Username string `json:"username,omitempty"`
}

// Endpoints are endpoint URLs a person gave explicitly.
type Endpoints struct {
	AuthURL       string `json:"authorization_endpoint,omitempty"`
	TokenURL      string `json:"token_endpoint,omitempty"`
	DeviceURL     string `json:"device_authorization_endpoint,omitempty"`
	RevocationURL string `json:"revocation_endpoint,omitempty"`
	UserinfoURL   string `json:"userinfo_endpoint,omitempty"`
	// ValidateURL is where `auth login --with-token` checks a token when
	// the host has no userinfo endpoint: a URL, or a path on the API URL.
	ValidateURL string `json:"validate_url,omitempty"`
}

// Load reads the file in dir. A missing file is an empty File.
func Load(dir string) (*File, error) {
	f := &File{path: filepath.Join(dir, FileName)}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, &Error{Path: f.path, Problem: "it is not valid JSON"}
	}
	return f, nil
}

// Error is a config file that cannot be used as it is. A person must fix
// or remove it; retrying cannot help.
type Error struct {
	Path    string
	Problem string
}

func (e *Error) Error() string {
	return fmt.Sprintf("read config %s: %s; fix or remove it (credentials are not kept in it)", e.Path, e.Problem)
}

// lockTimeout bounds the wait for another writer of the config file.
const lockTimeout = 10 * time.Second

// Update changes the config file in dir under its lock (a kernel lock on
// config.json.lock, which is never deleted): it reads the file afresh,
// applies fn, and writes the result atomically, so that concurrent
// commands (eight logins at once) never lose each other's changes. fn
// returning an error writes nothing. It returns the file as written.
func Update(ctx context.Context, dir string, fn func(*File) error) (*File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	path := filepath.Join(dir, FileName+".lock")
	fl := flock.New(path, flock.SetPermissions(0o600))
	lctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	ok, err := fl.TryLockContext(lctx, 10*time.Millisecond)
	if !ok || err != nil {
		_ = fl.Close()
		if err == nil || lctx.Err() != nil {
			return nil, fmt.Errorf("write config: another latch process has held %s for %s; find it with `fuser -v %s`", path, lockTimeout, path)
		}
		return nil, fmt.Errorf("write config: lock %s: %w", path, err)
	}
	defer fl.Unlock()
	f, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if err := fn(f); err != nil {
		return nil, err
	}
	if err := f.Save(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's location.
func (f *File) Path() string { return f.path }

// Get returns the entry for host, or nil.
func (f *File) Get(host string) *Host {
	if f.Hosts == nil {
		return nil
	}
	return f.Hosts[Normalize(host)]
}

// Ensure returns the entry for host, creating it.
func (f *File) Ensure(host string) *Host {
	host = Normalize(host)
	if f.Hosts == nil {
		f.Hosts = make(map[string]*Host)
	}
	h := f.Hosts[host]
	if h == nil {
		h = &Host{}
		f.Hosts[host] = h
	}
	return h
}

// HostNames returns the configured hosts, sorted.
func (f *File) HostNames() []string {
	names := make([]string, 0, len(f.Hosts))
	for n := range f.Hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// AddOrg records org as logged in on h. The empty org is the default account.
func (h *Host) AddOrg(org string) {
	if !slices.Contains(h.Orgs, org) {
		h.Orgs = append(h.Orgs, org)
		slices.Sort(h.Orgs)
	}
}

// RemoveOrg forgets org on h, and unselects it.
func (h *Host) RemoveOrg(org string) {
	h.Orgs = slices.DeleteFunc(h.Orgs, func(o string) bool { return o == org })
	if h.Org == org {
		h.Org = ""
	}
}

// Save writes the file atomically (temp file, fsync, rename), mode 0600.
// Writers that change what they read use Update, which holds the lock.
func (f *File) Save() error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config.*.tmp")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Normalize returns host without a trailing slash, the form used as a key.
func Normalize(host string) string { return strings.TrimSuffix(host, "/") }

// For reports whether g renews the login of clientID and org.
func (g *Grant) For(clientID, org string) bool {
	return g != nil && g.ClientID == clientID && g.Org == org
}
