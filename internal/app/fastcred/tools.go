package fastcred

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/endpoint"
)

// MaxInput bounds what a helper reads from stdin.
const MaxInput = 64 << 10

// Names of the small helpers.
const (
	DockerName = "docker-credential-latch"
	KubeName   = "kube-credential-latch"
)

// RegistryKey normalizes how Docker names a registry: a bare host[:port],
// or a URL such as https://index.docker.io/v1/.
func RegistryKey(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			s = u.Host
		}
	}
	s, _, _ = strings.Cut(s, "/")
	return strings.ToLower(s)
}

// Docker is docker-credential-latch: `latch credential docker` for get
// of a mapped registry with a valid stored token, answered by itself;
// every other operation and case goes to latch. It returns the exit code.
func Docker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var input []byte
	if len(args) == 1 && args[0] == "get" {
		b, err := io.ReadAll(io.LimitReader(stdin, MaxInput))
		if err == nil {
			if out, ok := dockerGet(ctx, string(b), getenv); ok {
				if _, err := io.WriteString(stdout, out); err != nil {
					fmt.Fprintf(stderr, "%s: %v\n", DockerName, err)
					return 1
				}
				return 0
			}
		}
		input = b
	} else if len(args) == 1 && (args[0] == "store" || args[0] == "erase") {
		input, _ = io.ReadAll(io.LimitReader(stdin, MaxInput))
	}
	return Delegate(DockerName, append([]string{"latch", "credential", "docker"}, args...), input, stdout, stderr)
}

func dockerGet(ctx context.Context, input string, getenv func(string) string) (string, bool) {
	server := strings.TrimSpace(input)
	u := server
	if !strings.Contains(u, "://") {
		u = "https://" + u // Docker's default for a registry
	}
	if endpoint.CheckURL(u) != nil {
		return "", false // latch says why
	}
	dir, cf, ok := loadConfig(getenv)
	if !ok {
		return "", false
	}
	r := cf.Docker[RegistryKey(server)]
	if r == nil {
		return "", false
	}
	// The host and account it was set up for, as latch sets its flags.
	flag := func(name string) (string, bool) {
		switch name {
		case "host":
			return r.Host, true
		case "org":
			return r.Org, true
		}
		return "", false
	}
	l, ok := open(dir, cf, flag, getenv)
	if !ok {
		return "", false
	}
	return answer(ctx, l, func(w io.Writer, tok *credential.Token) error {
		return WriteDocker(w, server, DockerUser(r.Username), tok.AccessToken)
	})
}

// answer is what write makes of l's valid stored token; false when there
// is none.
func answer(ctx context.Context, l *Login, write func(io.Writer, *credential.Token) error) (string, bool) {
	tok, ok := l.Token(ctx)
	if !ok {
		return "", false
	}
	var b strings.Builder
	if err := write(&b, tok); err != nil {
		return "", false
	}
	return b.String(), true
}

// DefaultDockerUsername goes with an OAuth access token as the password,
// as Google's registries name it.
const DefaultDockerUsername = "oauth2accesstoken"

// DockerUser is the username a registry mapping answers with.
func DockerUser(username string) string {
	if username != "" {
		return username
	}
	return DefaultDockerUsername
}

// Kube is kube-credential-latch, the kubectl exec credential plugin
// latch auth setup-kubectl writes when it is installed beside latch: it
// takes latch's own arguments (login flags, then `credential kubectl`
// and its --api-version), answers from a valid stored token, and hands
// everything else to latch with the same arguments.
func Kube(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if out, ok := kube(ctx, args, getenv); ok {
		if _, err := io.WriteString(stdout, out); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", KubeName, err)
			return 1
		}
		return 0
	}
	return Delegate(KubeName, append([]string{"latch"}, args...), nil, stdout, stderr)
}

func kube(ctx context.Context, args []string, getenv func(string) string) (string, bool) {
	flags, rest, ok := ParseArgs(args, LoginFlags...)
	if !ok || len(rest) < 2 || rest[0] != "credential" || rest[1] != "kubectl" {
		return "", false
	}
	sub, extra, ok := ParseArgs(rest[2:], "api-version")
	if !ok || len(extra) > 0 {
		return "", false
	}
	version := ExecCredentialV1
	if v, ok := sub["api-version"]; ok {
		version = v
	}
	if info := getenv("KUBERNETES_EXEC_INFO"); info != "" {
		var ec struct {
			APIVersion string `json:"apiVersion"`
		}
		if json.Unmarshal([]byte(info), &ec) != nil {
			return "", false
		}
		version = ec.APIVersion
	}
	if version != ExecCredentialV1 && version != ExecCredentialV1beta1 {
		return "", false
	}
	l, ok := Open(func(n string) (string, bool) { v, ok := flags[n]; return v, ok }, getenv)
	if !ok {
		return "", false
	}
	return answer(ctx, l, func(w io.Writer, tok *credential.Token) error {
		return WriteExecCredential(w, version, tok)
	})
}
