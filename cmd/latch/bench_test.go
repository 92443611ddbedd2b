package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/keyring"
)

// BenchmarkStartupAuthToken execs a built latch binary running
// `latch auth token` with a valid token in the file store: the start-up
// cost a script pays for $(latch auth token). It reports the median.
// "latch" is cmd/latch; "with-dev-server" is cmd/latch-dev run as latch:
// the same CLI with the dev server (zitadel, GraphQL) linked in, which is
// the cost that keeps the dev server in its own binary. "latch-keyring"
// reads the token from a real Secret Service instead (skipped without a
// D-Bus session).
func BenchmarkStartupAuthToken(b *testing.B) {
	for _, v := range []struct{ name, pkg, store string }{
		{"latch", ".", "file"}, {"with-dev-server", "../latch-dev", "file"}, {"latch-keyring", ".", "keyring"},
	} {
		b.Run(v.name, func(b *testing.B) {
			if v.store == "keyring" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
				b.Skip("no D-Bus session bus for the keyring")
			}
			bin := filepath.Join(b.TempDir(), "latch")
			if out, err := exec.Command("go", "build", "-o", bin, v.pkg).CombinedOutput(); err != nil {
				b.Fatalf("go build: %v\n%s", err, out)
			}
			dir := b.TempDir()
			host := "http://127.0.0.1:1" // never contacted: the token is valid
			cf := &config.File{Host: host, Hosts: map[string]*config.Host{host: {
				Store: v.store, Orgs: []string{""},
				Metadata: &discovery.Metadata{Issuer: host, TokenEndpoint: host + "/token"},
			}}}
			raw, _ := json.Marshal(cf)
			if err := os.WriteFile(filepath.Join(dir, config.FileName), raw, 0o600); err != nil {
				b.Fatal(err)
			}
			k := latch.Key{Issuer: host, ClientID: "latch-cli"}
			tok := &latch.Token{AccessToken: "bench-access-token", TokenType: "Bearer", RefreshToken: "bench-refresh",
				Expiry: time.Now().Add(24 * time.Hour), IssuedAt: time.Now(), Issuer: host, ClientID: "latch-cli"}
			st := latch.Store(filestore.New(dir))
			if v.store == "keyring" {
				st = keyring.New("latch")
			}
			if err := st.Save(context.Background(), k, nil, tok); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Delete(context.Background(), k, nil) })
			env := []string{"LATCH_CONFIG_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH"),
				"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				cmd := exec.Command(bin, "auth", "token")
				cmd.Env = env
				out, err := cmd.Output()
				times = append(times, time.Since(start))
				if err != nil || string(out) != "bench-access-token\n" {
					b.Fatalf("latch auth token: %v, %q", err, out)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
		})
	}
}

// BenchmarkStartupAuthTokenAB is the start-up benchmark paired: the
// latch of the checkout in $LATCH_BENCH_BASE (say, a git worktree of the
// previous release) and this one run alternately on the same config and
// credential, so both see the same machine state. It reports each
// median and their ratio.
//
//	git worktree add /tmp/base <commit>
//	LATCH_BENCH_BASE=/tmp/base go test -run '^$' -bench StartupAuthTokenAB -benchtime 300x ./cmd/latch/
func BenchmarkStartupAuthTokenAB(b *testing.B) {
	base := os.Getenv("LATCH_BENCH_BASE")
	if base == "" {
		b.Skip("set LATCH_BENCH_BASE to a checkout to compare with")
	}
	dir := b.TempDir()
	bins := map[string]string{"base": filepath.Join(dir, "latch-base"), "head": filepath.Join(dir, "latch-head")}
	for name, src := range map[string]string{"base": base, "head": filepath.Join("..", "..")} {
		cmd := exec.Command("go", "build", "-o", bins[name], "./cmd/latch")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	host := "http://127.0.0.1:1"
	cf := &config.File{Host: host, Hosts: map[string]*config.Host{host: {
		Store: "file", Orgs: []string{""},
		Metadata: &discovery.Metadata{Issuer: host, TokenEndpoint: host + "/token"},
		Scopes:   []string{"openid", "offline_access"},
	}}}
	raw, _ := json.Marshal(cf)
	if err := os.WriteFile(filepath.Join(dir, config.FileName), raw, 0o600); err != nil {
		b.Fatal(err)
	}
	k := latch.Key{Issuer: host, ClientID: "latch-cli"}
	tok := &latch.Token{AccessToken: "bench-access-token", TokenType: "Bearer", RefreshToken: "bench-refresh",
		Expiry: time.Now().Add(24 * time.Hour), IssuedAt: time.Now(), Issuer: host, ClientID: "latch-cli"}
	if err := filestore.New(dir).Save(context.Background(), k, nil, tok); err != nil {
		b.Fatal(err)
	}
	env := []string{"LATCH_CONFIG_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	times := map[string][]time.Duration{}
	run := func(name string) {
		start := time.Now()
		cmd := exec.Command(bins[name], "auth", "token")
		cmd.Env = env
		out, err := cmd.Output()
		times[name] = append(times[name], time.Since(start))
		if err != nil || string(out) != "bench-access-token\n" {
			b.Fatalf("%s auth token: %v, %q", name, err, out)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Alternate which goes first, so neither always follows the other.
		if i%2 == 0 {
			run("base")
			run("head")
		} else {
			run("head")
			run("base")
		}
		i++
	}
	median := func(ts []time.Duration) float64 {
		slices.Sort(ts)
		return float64(ts[len(ts)/2].Microseconds()) / 1000
	}
	mb, mh := median(times["base"]), median(times["head"])
	b.ReportMetric(mb, "ms-median-base")
	b.ReportMetric(mh, "ms-median-head")
	b.ReportMetric(mh/mb, "head/base")
}
