package e2e

import (
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/latchdev/latch/oauthtest"
)

// need skips the test when a program is missing, saying which Debian
// package has it (CI installs them all).
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s)", prog, pkg)
	}
	return p
}

// tokenChecker accepts a request whose bearer token, or Basic password,
// the dev server's API accepts; every other gets 401 with challenge.
func tokenChecker(srv *oauthtest.Server, challenge string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			_, tok, _ = r.BasicAuth()
		}
		if tok != "" {
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, srv.URL+"/v2/user", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					next.ServeHTTP(w, r)
					return
				}
			}
		}
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

// gitServer is git's smart-HTTP server (git http-backend over CGI) that
// requires a token the dev server issued, with one bare repository.
func gitServer(t *testing.T, e *env) (url string) {
	t.Helper()
	git := need(t, "git", "git")
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	repo := filepath.Join(root, "repo.git")
	seed := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q", "--bare", repo},
		{"-C", repo, "config", "http.receivepack", "true"},
		{"init", "-q", "-b", "main", seed},
		{"-C", seed, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-q", "--allow-empty", "-m", "first"},
		{"-C", seed, "push", "-q", repo, "main"},
		{"-C", repo, "symbolic-ref", "HEAD", "refs/heads/main"},
	} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=dev"},
	}
	hs := httptest.NewServer(tokenChecker(e.srv, `Basic realm="git"`, backend))
	t.Cleanup(hs.Close)
	return hs.URL
}

// git runs git as the user: their HOME (whose global
// config latch auth setup-git writes), no system config, no prompts.
func (e *env) git(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clip(e.environ), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=")
	return runCmd(t, cmd)
}

// Real git against a real smart-HTTP server: clone, fetch after the
// token expired on the client's clock, a token the server rejected
// (git's erase, then the next command refreshes), push, and 16 parallel
// fetches on an expired token with one refresh.
func TestGitCredentialHelper(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	base := gitServer(t, e)
	e.login()
	if r := e.run("auth", "setup-git", base); r.code != 0 {
		t.Fatalf("setup-git: %v", r)
	}
	gitconfig, _ := os.ReadFile(filepath.Join(e.dir, ".gitconfig"))
	mustContain(t, "~/.gitconfig", string(gitconfig), "[credential \""+base+"\"]")
	mustContain(t, "~/.gitconfig", string(gitconfig), "git-credential-latch' '--host'")
	// Setting it up again replaces latch's entry (an older one that ran
	// latch itself too), and only it.
	e.git(t, e.dir, "config", "--global", "--add", "credential."+base+".helper", "!'"+latchBin+"' credential git --url "+base)
	e.git(t, e.dir, "config", "--global", "--add", "credential."+base+".helper", "cache")
	if r := e.run("auth", "setup-git", base); r.code != 0 {
		t.Fatalf("setup-git again: %v", r)
	}
	helpers := e.git(t, e.dir, "config", "--global", "--get-all", "credential."+base+".helper").stdout
	if strings.Count(helpers, "git-credential-latch") != 1 || !strings.Contains(helpers, "cache") {
		t.Fatalf("helpers after a second setup-git:\n%s", helpers)
	}
	e.git(t, e.dir, "config", "--global", "--unset", "credential."+base+".helper", "^cache$")

	work := filepath.Join(e.dir, "work")
	if r := e.git(t, e.dir, "clone", "-q", base+"/repo.git", work); r.code != 0 {
		t.Fatalf("clone: %v", r)
	}

	// The small helper by itself, with no latch to hand over to, serves
	// a valid token: git's everyday request never starts latch.
	lone := filepath.Join(e.dir, "lone", "git-credential-latch")
	bin, err := os.ReadFile(filepath.Join(filepath.Dir(latchBin), "git-credential-latch"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(lone), 0o700)
	if err := os.WriteFile(lone, bin, 0o700); err != nil {
		t.Fatal(err)
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	key := "credential." + base + ".helper"
	alone := *e
	alone.environ = append(slices.Clip(e.environ), "PATH="+filepath.Dir(gitPath))
	if r := alone.git(t, work, "-c", key+"=", "-c", key+"=!"+lone+" --url "+base, "fetch", "-q"); r.code != 0 {
		t.Fatalf("fetch with git-credential-latch alone: %v", r)
	}

	// Expired on the client's clock: the helper refreshes first.
	e.expireLocally()
	e.srv.ResetCounters()
	if r := e.git(t, work, "fetch", "-q"); r.code != 0 {
		t.Fatalf("fetch after expiry: %v", r)
	}
	if c := e.counters(); c.RefreshSuccesses != 1 {
		t.Fatalf("refreshes: %d, want 1", c.RefreshSuccesses)
	}

	// Expired at the server only: git is refused, calls erase, and the
	// next git command gets a refreshed token.
	e.srv.ExpireAccessTokens()
	e.srv.ResetCounters()
	if r := e.git(t, work, "fetch", "-q"); r.code == 0 {
		t.Fatal("fetch with a token the server expired succeeded")
	}
	if r := e.git(t, work, "fetch", "-q"); r.code != 0 {
		t.Fatalf("fetch after erase: %v", r)
	}
	if c := e.counters(); c.RefreshSuccesses != 1 || c.ReuseDetections != 0 {
		t.Fatalf("after erase: %d refreshes, %d reuse; want 1, 0", c.RefreshSuccesses, c.ReuseDetections)
	}

	// Push.
	if r := e.git(t, work, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-q", "--allow-empty", "-m", "second"); r.code != 0 {
		t.Fatalf("commit: %v", r)
	}
	if r := e.git(t, work, "push", "-q", "origin", "main"); r.code != 0 {
		t.Fatalf("push: %v", r)
	}

	// 16 parallel fetches on an expired token: one refresh.
	e.expireLocally()
	e.srv.ResetCounters()
	var wg sync.WaitGroup
	res := make([]result, 16)
	for i := range res {
		wg.Go(func() { res[i] = e.git(t, work, "fetch", "-q") })
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("parallel fetch %d: %v", i, r)
		}
	}
	if c := e.counters(); c.RefreshSuccesses != 1 || c.ReuseDetections != 0 {
		t.Fatalf("16 parallel fetches: %d refreshes, %d reuse; want 1, 0", c.RefreshSuccesses, c.ReuseDetections)
	}
}

// Docker's own helper client library runs docker-credential-latch for a
// mapped registry: latch under Docker's name, and the small helper.
func TestDockerCredentialHelper(t *testing.T) {
	t.Run("latch", func(t *testing.T) {
		helper := filepath.Join(t.TempDir(), "docker-credential-latch")
		if err := os.Symlink(latchBin, helper); err != nil {
			t.Fatal(err)
		}
		testDockerHelper(t, helper)
	})
	t.Run("small", func(t *testing.T) {
		testDockerHelper(t, filepath.Join(filepath.Dir(latchBin), "docker-credential-latch"))
	})
}

func testDockerHelper(t *testing.T, helper string) {
	e := newEnv(t, oauthtest.Options{})
	env := map[string]string{}
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "LATCH_") || k == "HOME") {
			env[k] = v
		}
	}
	prog := client.NewShellProgramFuncWithEnv(helper, &env)
	const registry = "registry.example.com:5000"

	if _, err := client.Get(prog, "https://"+registry+"/v2/"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("unmapped registry: %v, want not found", err)
	}
	e.login()
	if r := e.run("auth", "setup-docker", registry); r.code != 0 {
		t.Fatalf("setup-docker: %v", r)
	}
	cfg, _ := os.ReadFile(filepath.Join(e.dir, ".docker", "config.json"))
	mustContain(t, "docker config", string(cfg), `"`+registry+`": "latch"`)

	c, err := client.Get(prog, registry)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if c.Secret != e.stored().AccessToken || c.Username != "oauth2accesstoken" {
		t.Fatalf("get: user %q, secret matches: %v", c.Username, c.Secret == e.stored().AccessToken)
	}
	e.expireLocally()
	e.srv.ResetCounters()
	c, err = client.Get(prog, "https://"+registry)
	if err != nil || c.Secret != e.stored().AccessToken || e.counters().RefreshSuccesses != 1 {
		t.Fatalf("get after expiry: %v, refreshes %d", err, e.counters().RefreshSuccesses)
	}
	list, err := client.List(prog)
	if err != nil || list[registry] != "oauth2accesstoken" || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if err := client.Store(prog, &credentials.Credentials{ServerURL: registry, Username: "u", Secret: "s"}); err == nil {
		t.Fatal("store was accepted")
	}
	if err := client.Erase(prog, registry); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if _, err := client.Get(prog, registry); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("after erase: %v, want not found", err)
	}
}

// Real kubectl with latch as its exec credential plugin, against an HTTPS
// API server that checks the token: get --raw /api keeps working across
// an expiry.
func TestKubectlExecCredential(t *testing.T) {
	kubectl := need(t, "kubectl", "kubernetes-client")
	e := newEnv(t, oauthtest.Options{})
	api := httptest.NewTLSServer(tokenChecker(e.srv, `Bearer realm="k8s"`, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}`))
	})))
	t.Cleanup(api.Close)
	kubeconfig := filepath.Join(e.dir, "kubeconfig")
	kc := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Env = e.environ
		return runCmd(t, cmd)
	}
	// Written here, not with kubectl config: Debian 12's kubectl 1.20
	// crashes writing a kubeconfig (json-iterator under a newer Go).
	pemCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	cfg := "# my clusters\napiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: " + api.URL +
		"\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(pemCA) +
		"\ncontexts:\n- name: test\n  context:\n    cluster: test\nusers: []\ncurrent-context: test\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.login()
	if r := e.run("auth", "setup-kubectl", "--context", "test", "--kubeconfig", kubeconfig); r.code != 0 {
		t.Fatalf("setup-kubectl: %v", r)
	}
	if b, _ := os.ReadFile(kubeconfig); !strings.Contains(string(b), "# my clusters") || !strings.Contains(string(b), "credential") {
		t.Fatalf("kubeconfig after setup-kubectl:\n%s", b)
	}
	// kube-credential-latch sits beside latch: setup-kubectl writes it.
	if b, _ := os.ReadFile(kubeconfig); !strings.Contains(string(b), "kube-credential-latch") {
		t.Fatalf("kubeconfig after setup-kubectl does not run the small plugin:\n%s", b)
	}
	r := kc("--context", "test", "get", "--raw", "/api")
	if r.code != 0 || !strings.Contains(r.stdout, `"APIVersions"`) {
		t.Fatalf("kubectl get --raw /api: %v", r)
	}
	e.expireLocally()
	e.srv.ResetCounters()
	r = kc("--context", "test", "get", "--raw", "/api")
	if r.code != 0 || !strings.Contains(r.stdout, `"APIVersions"`) {
		t.Fatalf("kubectl after expiry: %v", r)
	}
	if c := e.counters(); c.RefreshSuccesses != 1 {
		t.Fatalf("refreshes: %d, want 1", c.RefreshSuccesses)
	}
}

// A global credential.helper such as store must never be asked or save
// latch's token (git before 2.46 ignores ephemeral): setup-git resets the
// helper list for its URL. And plain http off loopback gets no token on
// either helper path (LESSONS 30).
func TestGitStoreHelperNeverSeesTheToken(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	base := gitServer(t, e)
	e.login()
	e.git(t, e.dir, "config", "--global", "credential.helper", "store")
	if r := e.run("auth", "setup-git", base); r.code != 0 {
		t.Fatalf("setup-git: %v", r)
	}
	// A global helper configured after latch's entry, too.
	e.git(t, e.dir, "config", "--global", "--add", "credential.helper", "store")
	work := filepath.Join(e.dir, "work")
	if r := e.git(t, e.dir, "clone", "-q", base+"/repo.git", work); r.code != 0 {
		t.Fatalf("clone: %v", r)
	}
	if r := e.git(t, work, "fetch", "-q"); r.code != 0 {
		t.Fatalf("fetch: %v", r)
	}
	if b, err := os.ReadFile(filepath.Join(e.dir, ".git-credentials")); err == nil {
		t.Fatalf("git's store helper saved a credential in plaintext:\n%s", b)
	}

	for _, helper := range [][]string{
		{latchBin, "credential", "git", "--url", "http://git.example.com", "get"},
		{filepath.Join(filepath.Dir(latchBin), "git-credential-latch"), "--url", "http://git.example.com", "get"},
	} {
		cmd := exec.Command(helper[0], helper[1:]...)
		cmd.Env = e.environ
		cmd.Stdin = strings.NewReader("protocol=http\nhost=git.example.com\n\n")
		r := runCmd(t, cmd)
		if r.code != 2 || strings.Contains(r.stdout, "password=") || !strings.Contains(r.stderr, "only over https") {
			t.Errorf("%s for plain http off loopback: %v; want exit 2, no token", filepath.Base(helper[0]), r)
		}
	}
}
