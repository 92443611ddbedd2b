package bench

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
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

// BenchmarkHelperStartup runs, alternately in one loop (each round in a
// new random order), a hello-world Go binary built with the same
// toolchain, the small git helper `git-credential-latch get` (what latch auth setup-git installs),
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
	runs := []startupRun{
		{"hello", "", "hello", []string{hello}, nil},
		{"small-helper", gitReq, "password=bench-access-token", []string{small, "get"}, nil},
		{"small-helper-cgo", gitReq, "password=bench-access-token", []string{smallCgo, "get"}, nil},
		{"git-helper", gitReq, "password=bench-access-token", []string{latchBin, "credential", "git", "get"}, nil},
		{"auth-token", "", "bench-access-token", []string{latchBin, "auth", "token"}, nil},
		{"docker-small", "registry.example.com\n", `"Secret":"bench-access-token"`, []string{docker, "get"}, nil},
		{"docker-latch", "registry.example.com\n", `"Secret":"bench-access-token"`, []string{latchBin, "credential", "docker", "get"}, nil},
		{"kube-small", "", `"token":"bench-access-token"`, []string{kube, "--host", host, "--org", "", "credential", "kubectl"}, nil},
		{"kube-latch", "", `"token":"bench-access-token"`, []string{latchBin, "--host", host, "--org", "", "credential", "kubectl"}, nil},
	}
	runs = append(runs, peerRuns(b, dir, env, small, host)...)
	times := map[string][]time.Duration{}
	// A fresh order each round: a program started right after a large
	// one is slowed by the kernel's clean-up of it, so a fixed order
	// would favour whichever follows hello.
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
		for _, r := range runs {
			cmd := exec.Command(r.argv[0], r.argv[1:]...)
			cmd.Env = append(env, r.env...)
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
	for _, pair := range [][2]string{{"docker-small", "ecr-helper"}, {"git-fill-latch", "git-fill-cache"}} {
		if med[pair[1]] > 0 {
			b.ReportMetric(med[pair[0]]/med[pair[1]], pair[0]+"/"+pair[1])
		}
	}
}

// startupRun is one program BenchmarkHelperStartup times.
type startupRun struct {
	name, stdin, want string
	argv              []string
	env               []string
}

// peerRuns are the peers each helper is compared with, in the same
// loop: amazon-ecr-credential-helper on a cache hit, when
// LATCH_BENCH_ECR names its binary (bench/peers/run.sh builds it at a
// pinned version), and, when git is installed, the whole `git credential
// fill` through git-credential-latch against the same through git's
// credential-cache holding the credential (the first helper of the
// cache + git-credential-oauth chain, which answers a hit alone). No
// peer reaches the network: the ECR cache entry is valid, and a miss
// would fail on the unroutable AWS endpoint set below.
func peerRuns(b *testing.B, dir string, env []string, small, host string) []startupRun {
	var runs []startupRun
	if ecr := os.Getenv("LATCH_BENCH_ECR"); ecr != "" {
		// The cache key is region-sha256(account ID)-registry ID
		// (ecr-login/cache/build.go); static keys from the environment
		// have no account ID.
		sum := sha256.Sum256(nil)
		key := "us-east-1-" + base64.StdEncoding.EncodeToString(sum[:]) + "-123456789012"
		now := time.Now()
		entry := map[string]any{"Registries": map[string]any{key: map[string]any{
			"AuthorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:bench-access-token")),
			"RequestedAt":        now, "ExpiresAt": now.Add(12 * time.Hour),
			"ProxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", "Service": "ecr",
		}}, "Version": "1.0"}
		raw, _ := json.Marshal(entry)
		ecrDir := filepath.Join(dir, "ecr")
		os.MkdirAll(ecrDir, 0o700)
		if err := os.WriteFile(filepath.Join(ecrDir, "cache.json"), raw, 0o600); err != nil {
			b.Fatal(err)
		}
		runs = append(runs, startupRun{name: "ecr-helper", stdin: "123456789012.dkr.ecr.us-east-1.amazonaws.com\n",
			want: `"Secret":"bench-access-token"`, argv: []string{ecr, "get"},
			env: []string{"AWS_ECR_CACHE_DIR=" + ecrDir, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDBENCH",
				"AWS_SECRET_ACCESS_KEY=bench", "AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}})
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return runs
	}
	sockDir := filepath.Join(dir, "git-cache") // git refuses a socket directory others can read
	if err := os.Mkdir(sockDir, 0o700); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(sockDir, "socket")
	gitEnv := []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
	approve := exec.Command(git, "-c", "credential.helper=", "-c", "credential.helper=cache --timeout 86400 --socket "+sock, "credential", "approve")
	approve.Env = append(env, gitEnv...)
	approve.Stdin = strings.NewReader("protocol=http\nhost=127.0.0.1:1\nusername=oauth2\npassword=bench-access-token\n\n")
	if out, err := approve.CombinedOutput(); err != nil {
		b.Fatalf("git credential approve: %v\n%s", err, out)
	}
	b.Cleanup(func() {
		exit := exec.Command(git, "credential-cache", "--socket", sock, "exit")
		exit.Env = env
		_ = exit.Run()
	})
	fill := "protocol=http\nhost=127.0.0.1:1\n\n"
	return append(runs,
		startupRun{name: "git-fill-latch", stdin: fill, want: "password=bench-access-token", env: gitEnv,
			argv: []string{git, "-c", "credential.helper=", "-c", "credential.helper=!'" + small + "' '--host' '" + host + "' '--org' ''", "credential", "fill"}},
		startupRun{name: "git-fill-cache", stdin: fill, want: "password=bench-access-token", env: gitEnv,
			argv: []string{git, "-c", "credential.helper=", "-c", "credential.helper=cache --socket " + sock, "credential", "fill"}},
	)
}
