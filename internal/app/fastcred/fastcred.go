// Package fastcred is the one fast path of latch's small credential
// helpers (git-credential-latch, docker-credential-latch and
// kube-credential-latch): it reads the config and the stored token,
// takes no lock and answers when that token is valid; anything else is
// handed, with the same arguments and input, to latch, which holds the
// refresh transaction. The answers are written by the same functions
// latch's own `credential` commands use, so both print the same bytes.
package fastcred

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/endpoint"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
)

// LoginFlags are latch's global flags that choose a login; a small
// helper reads them itself.
var LoginFlags = []string{"host", "org", "client-id", "credential-store", "api-url"}

// Login is the login a helper's flags, environment and config select.
type Login struct {
	Dir    string // the config directory
	Host   string // normalized
	Inputs settings.Inputs
}

// Open picks the login as latch does (settings.Inputs): false means
// "ask latch", for anything latch uses or checks itself (LATCH_DEBUG,
// LATCH_TOKEN, LATCH_TOKEN_TIMEOUT, no or a bad host, an unreadable
// config).
func Open(flag func(string) (string, bool), getenv func(string) string) (*Login, bool) {
	dir, cf, ok := loadConfig(getenv)
	if !ok {
		return nil, false
	}
	return open(dir, cf, flag, getenv)
}

// LatchDecides reports whether the environment asks for what only latch
// does or checks: LATCH_DEBUG, LATCH_TOKEN or LATCH_TOKEN_TIMEOUT.
func LatchDecides(getenv func(string) string) bool {
	return settings.Debug(getenv) || strings.TrimSpace(getenv(settings.EnvToken)) != "" || getenv(settings.EnvTokenTimeout) != ""
}

// loadConfig reads latch's config file.
func loadConfig(getenv func(string) string) (string, *config.File, bool) {
	dir, err := config.Dir(getenv)
	if err != nil {
		return "", nil, false
	}
	cf, err := config.Load(dir)
	return dir, cf, err == nil
}

func open(dir string, cf *config.File, flag func(string) (string, bool), getenv func(string) string) (*Login, bool) {
	if LatchDecides(getenv) {
		return nil, false
	}
	in := settings.Inputs{Flag: flag, Getenv: getenv, Config: cf}
	host := in.Host()
	if host == "" || endpoint.CheckURL(host) != nil {
		return nil, false
	}
	return &Login{Dir: dir, Host: config.Normalize(host), Inputs: in}, true
}

// Token returns the stored token when it is valid for longer than
// credential.DefaultSkew and no tool reported it rejected; false for anything
// else (a token to refresh, a fleet or auto-probed store, no login).
func (l *Login) Token(ctx context.Context) (*credential.Token, bool) {
	key, ok := l.Inputs.Key(l.Host)
	if !ok {
		return nil, false
	}
	mode, err := credstore.ParseMode(l.Inputs.Store(l.Host))
	if err != nil || mode == credstore.Auto {
		return nil, false // a fleet store's URL, or a keyring to probe
	}
	c, err := credstore.Open(ctx, credstore.Options{Mode: mode, Dir: l.Dir, Service: settings.KeyringService, NoProbe: true})
	if err != nil {
		return nil, false
	}
	tok, err := c.Store.Load(ctx, key)
	if err != nil || !tok.Fresh(time.Now(), credential.DefaultSkew) {
		return nil, false
	}
	if _, err := os.Stat(settings.RejectedMark(l.Dir, tok.AccessToken)); err == nil {
		return nil, false
	}
	return tok, true
}

// ParseArgs reads --name VALUE and --name=VALUE for the names allowed,
// up to the first argument that is not a flag; it returns the flags and
// the rest, false for any other flag.
func ParseArgs(args []string, allowed ...string) (map[string]string, []string, bool) {
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok {
			if strings.HasPrefix(args[i], "-") {
				return nil, nil, false
			}
			return flags, args[i:], true
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !slices.Contains(allowed, name) {
			return nil, nil, false
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, false
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	return flags, nil, true
}

// Delegate hands the request to latch with argv (argv[0] "latch") and
// the input already read, and returns its exit code; on Unix latch
// replaces this process, so the tool's signals and latch's exit status
// pass straight. name is the helper's name, for its own errors.
func Delegate(name string, argv []string, input []byte, stdout, stderr io.Writer) int {
	bin, err := settings.Program("latch")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, errors.New("latch is not installed beside it nor on PATH: install both (CGO_ENABLED=0 go install ./cmd/... in a clone of latch)"))
		return 2
	}
	code, err := runLatch(bin, argv, input, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: run %s: %v\n", name, bin, err)
		return 1
	}
	return code
}

// WriteDocker writes the docker-credential-helpers answer to get.
func WriteDocker(w io.Writer, server, username, secret string) error {
	return json.NewEncoder(w).Encode(map[string]string{
		"ServerURL": server, "Username": username, "Secret": secret,
	})
}

// ExecCredential API versions (client.authentication.k8s.io).
const (
	ExecCredentialV1      = "client.authentication.k8s.io/v1"
	ExecCredentialV1beta1 = "client.authentication.k8s.io/v1beta1"
)

// WriteExecCredential writes client-go's ExecCredential for tok in
// version, its expiry set to when latch would refresh early (Token.EarlyExpiry),
// so kubectl asks again then.
func WriteExecCredential(w io.Writer, version string, tok *credential.Token) error {
	status := map[string]any{"token": tok.AccessToken}
	if !tok.Expiry.IsZero() {
		status["expirationTimestamp"] = tok.EarlyExpiry(credential.DefaultSkew).UTC().Format(time.RFC3339)
	}
	return json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": version, "kind": "ExecCredential", "status": status,
	})
}
