package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/pgstore"
	"github.com/latchdev/latch/redisstore"
)

var benchKey = []byte("0123456789abcdef0123456789abcdef")

// BenchmarkFleetStores measures Load and a locked compare-and-swap Save
// (latch.Put: lock, load, compare, write) of a 2 KiB set on the file
// store, PostgreSQL and Redis, side by side in one run, against private
// servers on loopback, each as durable as the file store (which fsyncs):
// PostgreSQL with fsync on, Redis with appendfsync always.
//
//	go test -run '^$' -bench FleetStores -benchtime 500x ./bench/
func BenchmarkFleetStores(b *testing.B) {
	ctx := context.Background()
	pg := testdb.StartDurablePostgres(b)
	rd := testdb.StartDurableRedis(b)
	ps, err := pgstore.Open(ctx, pg.URL, pgstore.Options{Key: benchKey})
	if err != nil {
		b.Fatal(err)
	}
	defer ps.Close()
	rs, err := redisstore.Open(ctx, rd.URL, redisstore.Options{Key: benchKey})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	k := latch.Key{Issuer: "https://as.example", ClientID: "cli"}
	tok := &latch.Token{AccessToken: filled('a', 1000), RefreshToken: filled('r', 1000), TokenType: "Bearer",
		Expiry: time.Now().Add(time.Hour), Issuer: k.Issuer, ClientID: k.ClientID, Lineage: "bench"}
	for _, st := range []struct {
		name string
		s    latch.Store
	}{{"file", filestore.New(b.TempDir())}, {"postgres", ps}, {"redis", rs}} {
		if err := latch.Put(ctx, st.s, k, tok); err != nil {
			b.Fatal(err)
		}
		b.Run("Load/"+st.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := st.s.Load(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Put/"+st.name, func(b *testing.B) {
			for b.Loop() {
				tok.Generation++
				if err := latch.Put(ctx, st.s, k, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func filled(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// BenchmarkFleetStorm starts 32 `latch api` processes on an expired token:
// on one machine with the file store, and as 4 machines × 8 sharing
// PostgreSQL (directly, and through pgbouncer in session mode) and Redis,
// all durable. It reports each median wall time and token calls.
//
//	go test -run '^$' -bench FleetStorm -benchtime 10x ./bench/
func BenchmarkFleetStorm(b *testing.B) {
	dir := b.TempDir()
	latchBin, devBin := filepath.Join(dir, "latch"), filepath.Join(dir, "latch-dev")
	for bin, pkg := range map[string]string{latchBin: "../cmd/latch", devBin: "../cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	keyFile := filepath.Join(dir, "store.key")
	os.WriteFile(keyFile, benchKey, 0o600)
	pg := testdb.StartDurablePostgres(b)
	bouncer := testdb.StartPgBouncer(b, pg)
	rd := testdb.StartDurableRedis(b)
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	defer srv.Close()
	for _, c := range []struct {
		name     string
		store    string
		machines int
	}{{"file-1x32", "file", 1}, {"postgres-4x8", pg.URL, 4}, {"pgbouncer-4x8", bouncer.URL, 4}, {"redis-4x8", rd.URL, 4}} {
		b.Run(c.name, func(b *testing.B) {
			envs := make([][]string, c.machines)
			for i := range envs {
				d := filepath.Join(b.TempDir(), "m")
				envs[i] = append(os.Environ(), "HOME="+d, "LATCH_CONFIG_DIR="+d, "LATCH_HOST="+srv.URL,
					"LATCH_CREDENTIAL_STORE="+c.store, "LATCH_STORE_KEY_FILE="+keyFile,
					"BROWSER="+devBin+" browse", "LATCH_DEBUG=", "LATCH_TOKEN=")
			}
			login := exec.Command(latchBin, "auth", "login")
			login.Env = envs[0]
			if out, err := login.CombinedOutput(); err != nil {
				b.Fatalf("login: %v\n%s", err, out)
			}
			var walls []time.Duration
			calls := 0
			for b.Loop() {
				srv.ExpireAccessTokens()
				before := srv.Counters()
				start := time.Now()
				var wg sync.WaitGroup
				for i := range 32 {
					wg.Go(func() {
						cmd := exec.Command(latchBin, "api", "/v2/user")
						cmd.Env = envs[i%c.machines]
						if err := cmd.Run(); err != nil {
							b.Errorf("process %d: %v", i, err)
						}
					})
				}
				wg.Wait()
				walls = append(walls, time.Since(start))
				after := srv.Counters()
				calls += after.TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]
				if after.ReuseDetections != before.ReuseDetections {
					b.Fatal("reuse detected")
				}
			}
			slices.Sort(walls)
			b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "ms-median-wall")
			b.ReportMetric(float64(calls)/float64(len(walls)), "refresh-calls/storm")
		})
	}
}
