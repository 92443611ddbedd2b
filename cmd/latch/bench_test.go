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
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/config"
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
				Metadata: &config.Metadata{Issuer: host, TokenEndpoint: host + "/token"},
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
