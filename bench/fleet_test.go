package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/pgstore"
	"github.com/latchdev/latch/redisstore"
	"github.com/latchdev/latch/storekit"
)

var benchKey = []byte("0123456789abcdef0123456789abcdef")

// BenchmarkFleetStores measures Load and a locked compare-and-swap Save
// (storekit.Put: lock, load, compare, write) of a 2 KiB set on the file
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
		if err := storekit.Put(ctx, st.s, k, tok); err != nil {
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
				if err := storekit.Put(ctx, st.s, k, tok); err != nil {
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
// PostgreSQL (directly, and through pgbouncer in session and in
// transaction mode) and Redis, all durable. It reports each median wall
// time and token calls, and (…/valid) the same batch on a valid token.
//
//	go test -run '^$' -bench FleetStorm -benchtime 10x ./bench/
func BenchmarkFleetStorm(b *testing.B) {
	f := startFleet(b)
	for _, c := range []struct {
		name     string
		store    string
		machines int
	}{{"file-1x32", "file", 1}, {"postgres-4x8", f.pg.URL, 4}, {"pgbouncer-4x8", f.session.URL, 4},
		{"pgbouncer-tx-4x8", f.transaction.URL, 4}, {"redis-4x8", f.redis.URL, 4}} {
		b.Run(c.name, func(b *testing.B) { f.storm(b, c.store, c.machines, 32, nil) })
		b.Run(c.name+"/valid", func(b *testing.B) { f.batch(b, c.store, c.machines, 32, nil, false) })
	}
}

// BenchmarkFleetScale is the scale curve: N = 8, 32, 128 `latch api`
// processes on an expired token over 4 machines sharing one identity, on
// PostgreSQL direct, through pgbouncer in both modes, and on Redis. It
// reports token calls per expiry (must stay 1), the median wall time, and
// the most connections the database served at once (PostgreSQL backends;
// Redis clients), sampled every 2 ms.
//
//	go test -run '^$' -bench FleetScale -benchtime 5x ./bench/
func BenchmarkFleetScale(b *testing.B) {
	f := startFleet(b)
	ctx := context.Background()
	backends := func() int {
		var n int
		// The sampler's own connection excluded.
		if err := f.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = 'latch' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	clients := func() int {
		n, err := f.rdb.ClientList(ctx).Result()
		if err != nil {
			return -1
		}
		return strings.Count(n, "\n") - 1
	}
	for _, c := range []struct {
		name  string
		store string
		conns func() int
	}{{"postgres", f.pg.URL, backends}, {"pgbouncer", f.session.URL, backends},
		{"pgbouncer-tx", f.transaction.URL, backends}, {"redis", f.redis.URL, clients}} {
		for _, n := range []int{8, 32, 128} {
			b.Run(fmt.Sprintf("%s/N=%d", c.name, n), func(b *testing.B) {
				f.storm(b, c.store, 4, n, c.conns)
				if b.Failed() && c.name == "pgbouncer-tx" {
					b.Logf("pgbouncer's log:\n%s", f.transaction.Log())
				}
			})
		}
	}
}

// fleet is the servers and programs the fleet benchmarks share.
type fleet struct {
	latch, dev, keyFile  string
	pg                   *testdb.Postgres
	session, transaction *testdb.PgBouncer
	redis                *testdb.Redis
	srv                  *oauthtest.Server
	admin                *pgx.Conn
	rdb                  *redis.Client
}

func startFleet(b *testing.B) *fleet {
	dir := b.TempDir()
	f := &fleet{latch: filepath.Join(dir, "latch"), dev: filepath.Join(dir, "latch-dev"), keyFile: filepath.Join(dir, "store.key")}
	for bin, pkg := range map[string]string{f.latch: "../cmd/latch", f.dev: "../cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	os.WriteFile(f.keyFile, benchKey, 0o600)
	f.pg = testdb.StartDurablePostgres(b)
	f.session = testdb.StartPgBouncer(b, f.pg)
	f.transaction = testdb.StartPgBouncerMode(b, f.pg, "transaction")
	f.redis = testdb.StartDurableRedis(b)
	f.srv = oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	b.Cleanup(f.srv.Close)
	ctx := context.Background()
	var err error
	if f.admin, err = pgx.Connect(ctx, f.pg.URL); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.admin.Close(ctx) })
	opt, err := redis.ParseURL(f.redis.URL)
	if err != nil {
		b.Fatal(err)
	}
	f.rdb = redis.NewClient(opt)
	b.Cleanup(func() { f.rdb.Close() })
	return f
}

// storm logs in once, then per iteration expires the access token and
// runs n `latch api` processes spread over machines; conns, when set, is
// sampled meanwhile and its peak reported.
func (f *fleet) storm(b *testing.B, store string, machines, n int, conns func() int) {
	f.batch(b, store, machines, n, conns, true)
}

// batch is storm, with the access token expired before each batch or
// left valid (the same processes with nothing to refresh: what a storm
// costs is its wall time over this one's).
func (f *fleet) batch(b *testing.B, store string, machines, n int, conns func() int, expire bool) {
	envs := make([][]string, machines)
	for i := range envs {
		d := filepath.Join(b.TempDir(), "m")
		envs[i] = append(os.Environ(), "HOME="+d, "LATCH_CONFIG_DIR="+d, "LATCH_HOST="+f.srv.URL,
			"LATCH_CREDENTIAL_STORE="+store, "LATCH_STORE_KEY_FILE="+f.keyFile,
			"BROWSER="+f.dev+" browse", "LATCH_DEBUG=", "LATCH_TOKEN=")
	}
	login := exec.Command(f.latch, "auth", "login")
	login.Env = envs[0]
	if out, err := login.CombinedOutput(); err != nil {
		b.Fatalf("login: %v\n%s", err, out)
	}
	var walls []time.Duration
	calls, peak := 0, 0
	for b.Loop() {
		if expire {
			f.srv.ExpireAccessTokens()
		}
		before := f.srv.Counters()
		done := make(chan struct{})
		sampled := make(chan int, 1)
		go func() {
			most := 0
			for {
				select {
				case <-done:
					sampled <- most
					return
				case <-time.After(2 * time.Millisecond):
				}
				if conns != nil {
					most = max(most, conns())
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				cmd := exec.Command(f.latch, "api", "/v2/user")
				cmd.Env = envs[i%machines]
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Errorf("process %d: %v\n%s", i, err, out)
				}
			})
		}
		wg.Wait()
		walls = append(walls, time.Since(start))
		close(done)
		peak = max(peak, <-sampled)
		after := f.srv.Counters()
		calls += after.TokenCalls["refresh_token"] - before.TokenCalls["refresh_token"]
		if after.ReuseDetections != before.ReuseDetections {
			b.Fatal("reuse detected")
		}
	}
	slices.Sort(walls)
	b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "ms-median-wall")
	b.ReportMetric(float64(calls)/float64(len(walls)), "refresh-calls/storm")
	if conns != nil {
		b.ReportMetric(float64(peak), "peak-conns")
	}
}
