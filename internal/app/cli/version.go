package cli

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the module version, the VCS revision and the Go version of
// this binary, from its build information.
func version() (mod, rev, goVersion string) {
	mod, goVersion = "(devel)", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return mod, "", goVersion
	}
	goVersion = bi.GoVersion
	if v := bi.Main.Version; v != "" {
		mod = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+modified"
	}
	return mod, rev, goVersion
}

func versionLine() string {
	mod, rev, goVersion := version()
	s := "latch " + mod
	if rev != "" {
		s += " (" + rev + ")"
	}
	return s + " " + goVersion
}

// userAgent is latch's User-Agent: latch/VERSION.
func userAgent() string {
	mod, _, _ := version()
	if mod == "(devel)" {
		mod = "devel" // a product version is a token (RFC 9110 §10.1.5)
	}
	return "latch/" + strings.TrimPrefix(mod, "v")
}

func (a *App) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print latch's version, VCS revision and Go version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.Stdout, versionLine())
			return nil
		},
	}
}

// uaTransport sets latch's User-Agent on requests that have none, on a
// copy: a RoundTripper never changes its caller's request.
type uaTransport struct {
	base http.RoundTripper
	ua   string
}

func (t *uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") != "" {
		return t.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("User-Agent", t.ua)
	return t.base.RoundTrip(r2)
}
