package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/app/config"
)

// BenchmarkHelperStartup runs, alternately in one loop (A B C … A B C …),
// a hello-world Go binary built with the same toolchain, the small git
// helper `git-credential-latch get` (what latch auth setup-git installs),
// `latch credential git get` and `latch auth token`, the small Docker
// helper `docker-credential-latch get` against `latch credential docker
// get`, and the small kubectl plugin `kube-credential-latch … credential
// kubectl` against `latch … credential kubectl`, each with a valid
// token in the file store, and reports each median and its ratio to
// hello. Everything is built as the README installs it (CGO_ENABLED=0:
// static); the small helper is also run as a default cgo build, which
// links the C library dynamically.
//
//	go test -run '^$' -bench HelperStartup -benchtime 300x ./bench/
func BenchmarkHelperStartup(b *testing.B) {
	dir := b.TempDir()
	hello, latchBin := filepath.Join(dir, "hello"), filepath.Join(dir, "latch")
	small, smallCgo := filepath.Join(dir, "git-credential-latch"), filepath.Join(dir, "cgo", "git-credential-latch")
	docker, kube := filepath.Join(dir, "docker-credential-latch"), filepath.Join(dir, "kube-credential-latch")
	for _, bld := range []struct{ out, pkg, cgo string }{
		{hello, "./testdata/hello", "0"}, {latchBin, "../cmd/latch", "0"},
		{small, "../cmd/git-credential-latch", "0"}, {smallCgo, "../cmd/git-credential-latch", "1"},
		{docker, "../cmd/docker-credential-latch", "0"}, {kube, "../cmd/kube-credential-latch", "0"},
	} {
		cmd := exec.Command("go", "build", "-o", bld.out, bld.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+bld.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", bld.pkg, err, out)
		}
	}
	host := "http://127.0.0.1:1" // never contacted: the token is valid
	cf := &config.File{Host: host, Hosts: map[string]*config.Host{host: {
		Store: "file", Orgs: []string{""},
		Metadata: &discovery.Metadata{Issuer: host, TokenEndpoint: host + "/token"},
		Scopes:   []string{"openid", "offline_access"},
	}}, Docker: map[string]*config.DockerRegistry{"registry.example.com": {Host: host}}}
	raw, _ := json.Marshal(cf)
	if err := os.WriteFile(filepath.Join(dir, config.FileName), raw, 0o600); err != nil {
		b.Fatal(err)
	}
	tok := &latch.Token{AccessToken: "bench-access-token", TokenType: "Bearer", RefreshToken: "bench-refresh",
		Expiry: time.Now().Add(24 * time.Hour), IssuedAt: time.Now(), Issuer: host, ClientID: "latch-cli"}
	if err := filestore.New(dir).Save(context.Background(), tok.Key(), nil, tok); err != nil {
		b.Fatal(err)
	}
	env := []string{"LATCH_CONFIG_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	gitReq := "protocol=http\nhost=127.0.0.1:1\n\n"
	runs := []struct {
		name, stdin, want string
		argv              []string
	}{
		{"hello", "", "hello", []string{hello}},
		{"small-helper", gitReq, "password=bench-access-token", []string{small, "get"}},
		{"small-helper-cgo", gitReq, "password=bench-access-token", []string{smallCgo, "get"}},
		{"git-helper", gitReq, "password=bench-access-token", []string{latchBin, "credential", "git", "get"}},
		{"auth-token", "", "bench-access-token", []string{latchBin, "auth", "token"}},
		{"docker-small", "registry.example.com\n", `"Secret":"bench-access-token"`, []string{docker, "get"}},
		{"docker-latch", "registry.example.com\n", `"Secret":"bench-access-token"`, []string{latchBin, "credential", "docker", "get"}},
		{"kube-small", "", `"token":"bench-access-token"`, []string{kube, "--host", host, "--org", "", "credential", "kubectl"}},
		{"kube-latch", "", `"token":"bench-access-token"`, []string{latchBin, "--host", host, "--org", "", "credential", "kubectl"}},
	}
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for b.Loop() {
		for _, r := range runs {
			cmd := exec.Command(r.argv[0], r.argv[1:]...)
			cmd.Env = env
			cmd.Stdin = strings.NewReader(r.stdin)
			start := time.Now()
			out, err := cmd.Output()
			times[r.name] = append(times[r.name], time.Since(start))
			if err != nil || !strings.Contains(string(out), r.want) {
				b.Fatalf("%s: %v, %q", r.name, err, out)
			}
		}
	}
	med := map[string]float64{}
	for name, ts := range times {
		slices.Sort(ts)
		med[name] = float64(ts[len(ts)/2].Microseconds()) / 1000
		b.ReportMetric(med[name], "ms-"+name)
	}
	b.ReportMetric(med["small-helper"]/med["hello"], "small/hello")
	b.ReportMetric(med["small-helper-cgo"]/med["hello"], "small-cgo/hello")
	b.ReportMetric(med["git-helper"]/med["hello"], "helper/hello")
	b.ReportMetric(med["auth-token"]/med["hello"], "token/hello")
	b.ReportMetric(med["docker-small"]/med["hello"], "docker-small/hello")
	b.ReportMetric(med["docker-latch"]/med["hello"], "docker-latch/hello")
	b.ReportMetric(med["kube-small"]/med["hello"], "kube-small/hello")
	b.ReportMetric(med["kube-latch"]/med["hello"], "kube-latch/hello")
}
