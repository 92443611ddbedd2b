package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/testdb"
	"github.com/latchdev/latch/oauthtest"
)

// machine is one of a fleet: its own HOME and config directory, the
// fleet's store.
func (e *env) machine(t *testing.T, store, keyFile string) *env {
	t.Helper()
	dir := t.TempDir()
	m := &env{t: t, srv: e.srv, dir: dir}
	for _, kv := range e.environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "LATCH_CONFIG_DIR", "LATCH_CREDENTIAL_STORE", "LATCH_STORE_KEY_FILE":
			continue
		}
		m.environ = append(m.environ, kv)
	}
	m.environ = append(m.environ, "HOME="+dir, "LATCH_CONFIG_DIR="+filepath.Join(dir, "config"),
		"LATCH_CREDENTIAL_STORE="+store, "LATCH_STORE_KEY_FILE="+keyFile)
	return m
}

// fleetKey is the store key storeKey writes.
const fleetKey = "0123456789abcdef0123456789abcdef"

func storeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(p, []byte(fleetKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type fleetDB struct {
	name, kind string // kind: how latch names the store
	url        func(t *testing.T) (url string, stop, start func())
}

var fleetDBs = []fleetDB{
	{"postgres", "postgres", func(t *testing.T) (string, func(), func()) {
		pg := testdb.StartPostgres(t)
		return pg.URL, pg.Stop, pg.Start
	}},
	// PostgreSQL behind pgbouncer in session mode: what a fleet of
	// short-lived commands should connect through (docs/benchmarks.md).
	{"pgbouncer", "postgres", func(t *testing.T) (string, func(), func()) {
		pg := testdb.StartPostgres(t)
		return testdb.StartPgBouncer(t, pg).URL, pg.Stop, pg.Start
	}},
	// pgbouncer in transaction mode, the default of many managed
	// PostgreSQL front ends: a session advisory lock does nothing there.
	{"pgbouncer-tx", "postgres", func(t *testing.T) (string, func(), func()) {
		pg := testdb.StartPostgres(t)
		return testdb.StartPgBouncerMode(t, pg, "transaction").URL, pg.Stop, pg.Start
	}},
	{"redis", "redis", func(t *testing.T) (string, func(), func()) {
		r := testdb.StartDurableRedis(t)
		return r.URL, r.Stop, r.Start
	}},
}

func fleetDBNamed(name string) fleetDB {
	for _, db := range fleetDBs {
		if db.name == name {
			return db
		}
	}
	panic("no fleet database " + name)
}

// 4 machines × 8 processes on an expired token share one store: exactly
// one token call, no reuse, every process succeeds; then status and
// logout work across the fleet, and no output shows the store's password.
func TestFleetStorm(t *testing.T) {
	for _, db := range fleetDBs {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			url, _, _ := db.url(t)
			key := storeKey(t)
			machines := make([]*env, 4)
			for i := range machines {
				machines[i] = e.machine(t, url, key)
			}
			r := machines[0].run("auth", "login")
			if r.code != 0 {
				t.Fatalf("login: %v", r)
			}
			mustContain(t, "login", r.stderr, "Credential stored in the "+db.kind+" store: ")
			if strings.Contains(r.stdout+r.stderr, testdb.Password) {
				t.Fatal("login output shows the store's password")
			}
			e.srv.ExpireAccessTokens()
			e.srv.ResetCounters()
			var wg sync.WaitGroup
			res := make([][]result, len(machines))
			for i, m := range machines {
				wg.Go(func() { res[i] = m.runMany(8, "api", "/v2/user") })
			}
			wg.Wait()
			for i := range res {
				for j, r := range res[i] {
					if r.code != 0 {
						t.Errorf("machine %d process %d: %v", i, j, r)
					}
					if strings.Contains(r.stdout+r.stderr, testdb.Password) {
						t.Errorf("machine %d process %d shows the store's password", i, j)
					}
				}
			}
			c := e.counters()
			if c.TokenCalls["refresh_token"] != 1 || c.ReuseDetections != 0 {
				t.Fatalf("fleet storm: %d refresh calls, %d reuse; want 1, 0", c.TokenCalls["refresh_token"], c.ReuseDetections)
			}
			st := machines[2].run("auth", "status")
			if st.code != 0 || !strings.Contains(st.stdout, "store: "+db.kind) || strings.Contains(st.stdout, testdb.Password) {
				t.Fatalf("status on another machine: %v", st)
			}
			if r := machines[3].run("auth", "logout"); r.code != 0 {
				t.Fatalf("logout on machine 3: %v", r)
			}
			// Machine 1 keeps a copy of the access token (fleet.Cache); the
			// logout revoked it at the server, whose 401 sends machine 1 to
			// the fleet store, which has nothing: log in again, and the
			// copy is gone.
			if r := machines[1].run("api", "/v2/user"); r.code != 4 || !strings.Contains(r.stderr, "latch auth login") {
				t.Fatalf("api on machine 1 after the fleet logged out: %v", r)
			}
			if r := machines[1].run("auth", "token"); r.code != 4 {
				t.Fatalf("auth token on machine 1 after the fleet logged out: %v", r)
			}
		})
	}
}

// The lock holder is SIGKILLed while its refresh waits at the server
// (before the server processes it): the lock dies with it, the others
// proceed, one refresh, no reuse.
func TestFleetHolderKilled(t *testing.T) {
	for _, db := range fleetDBs {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			url, _, _ := db.url(t)
			key := storeKey(t)
			a, b := e.machine(t, url, key), e.machine(t, url, key)
			if r := a.run("auth", "login"); r.code != 0 {
				t.Fatalf("login: %v", r)
			}
			e.srv.ExpireAccessTokens()
			e.srv.ResetCounters()
			e.srv.SetFaults(oauthtest.Faults{Latency: 3 * time.Second})
			holder := a.command("api", "/v2/user")
			if err := holder.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the holder's refresh to reach the server", func() bool {
				return e.counters().TokenCalls["refresh_token"] == 1
			})
			holder.Process.Signal(syscall.SIGKILL)
			holder.Wait()
			e.srv.SetFaults(oauthtest.Faults{})
			start := time.Now()
			for i, r := range b.runMany(8, "api", "/v2/user") {
				if r.code != 0 {
					t.Errorf("process %d after the holder died: %v", i, r)
				}
			}
			c := e.counters()
			t.Logf("the others finished %s after the SIGKILL (%s store)", time.Since(start).Round(time.Millisecond), db.name)
			if c.RefreshSuccesses != 1 || c.ReuseDetections != 0 {
				t.Fatalf("after the holder died: %d refreshes, %d reuse; want 1, 0", c.RefreshSuccesses, c.ReuseDetections)
			}
		})
	}
}

// The database killed and restarted mid-storm (PostgreSQL; Redis with an
// append-only file, fsync always): processes that could not reach it fail
// as transient (exit 5), the rotated credential is not lost, and the next
// command works. (Against a Redis that keeps nothing, the same restart
// loses the login: exit 4.)
func TestFleetDatabaseRestart(t *testing.T) {
	for _, db := range fleetDBs {
		t.Run(db.name, func(t *testing.T) { testDatabaseRestart(t, db) })
	}
}

func testDatabaseRestart(t *testing.T, db fleetDB) {
	e := newEnv(t, oauthtest.Options{})
	url, stop, start := db.url(t)
	key := storeKey(t)
	m := e.machine(t, url, key)
	if r := m.run("auth", "login"); r.code != 0 {
		t.Fatalf("login: %v", r)
	}
	e.srv.ExpireAccessTokens()
	e.srv.ResetCounters()
	e.srv.SetFaults(oauthtest.Faults{Latency: 300 * time.Millisecond})
	var wg sync.WaitGroup
	var res []result
	wg.Go(func() { res = m.runMany(16, "api", "/v2/user") })
	time.Sleep(100 * time.Millisecond)
	stop()
	time.Sleep(500 * time.Millisecond)
	start()
	wg.Wait()
	e.srv.SetFaults(oauthtest.Faults{})
	codes := map[int]int{}
	for _, r := range res {
		codes[r.code]++
		if r.code != 0 && r.code != 5 {
			t.Errorf("a process during the restart: %v", r)
		}
	}
	t.Logf("exit codes during the restart: %v", codes)
	if r := m.run("api", "/v2/user"); r.code != 0 {
		t.Fatalf("after the restart: %v", r)
	}
	if c := e.counters(); c.ReuseDetections != 0 {
		t.Fatalf("%d reuse during the restart", c.ReuseDetections)
	}
}

// Without a store key, a fleet store is refused with the fix named.
func TestFleetNeedsAKey(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	url, _, _ := fleetDBNamed("redis").url(t)
	m := e.machine(t, url, "")
	r := m.run("auth", "login")
	if r.code != 2 || !strings.Contains(r.stderr, "LATCH_STORE_KEY_FILE") || strings.Contains(r.stderr, testdb.Password) {
		t.Fatalf("login without a key: %v", r)
	}
	if r := m.run("--insecure-store-plaintext", "auth", "login"); r.code != 0 {
		t.Fatalf("login with --insecure-store-plaintext: %v", r)
	}
}

// A login moves a credential into a fleet store; later commands on that
// host then need the store's URL, and say so.
func TestFleetMoveStore(t *testing.T) {
	e := newEnv(t, oauthtest.Options{})
	url, _, _ := fleetDBNamed("postgres").url(t)
	key := storeKey(t)
	m := e.machine(t, "file", key)
	if r := m.run("auth", "login"); r.code != 0 {
		t.Fatalf("login to the file store: %v", r)
	}
	// The password from PGPASSWORD: one in the flag is refused (TestFleetStoreSecrets).
	m.environ = append(m.environ, "PGPASSWORD="+testdb.Password)
	url = strings.Replace(url, ":"+testdb.Password+"@", "@", 1)
	r := m.run("--credential-store", url, "auth", "login")
	if r.code != 0 || !strings.Contains(r.stderr, "Credential stored in the postgres store: postgres://latch@") {
		t.Fatalf("login into postgres: %v", r)
	}
	noStore := m.machine(t, "", key)
	noStore.environ = append(m.environ[:0:0], m.environ...)
	for i, kv := range noStore.environ {
		if strings.HasPrefix(kv, "LATCH_CREDENTIAL_STORE=") {
			noStore.environ[i] = "LATCH_CREDENTIAL_STORE="
		}
	}
	r = noStore.run("auth", "token")
	if r.code != 2 || !strings.Contains(r.stderr, "are in a postgres store: set LATCH_CREDENTIAL_STORE") {
		t.Fatalf("auth token without the store's URL: %v", r)
	}
	if r := m.run("--credential-store", url, "auth", "token"); r.code != 0 {
		t.Fatalf("auth token with the store's URL: %v", r)
	}
}

// A store URL with a password is refused in --credential-store (every
// local user sees it in ps), and accepted from LATCH_CREDENTIAL_STORE or,
// for PostgreSQL, PGPASSWORD. A password the store refuses is exit 2 with
// one line saying so, never exit 5 "try again".
func TestFleetStoreSecrets(t *testing.T) {
	for _, db := range []fleetDB{fleetDBNamed("postgres"), fleetDBNamed("redis")} {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			url, _, _ := db.url(t)
			key := storeKey(t)
			m := e.machine(t, url, key)
			if r := m.run("auth", "login"); r.code != 0 {
				t.Fatalf("login with the URL in the environment: %v", r)
			}
			noSecret := func(what string, r result) {
				t.Helper()
				if strings.Contains(r.stdout+r.stderr, testdb.Password) {
					t.Fatalf("%s shows the store's password: %v", what, r)
				}
			}
			r := m.run("--credential-store", url, "auth", "token")
			noSecret("the password in the flag", r)
			if r.code != 2 || !strings.Contains(r.stderr, "a password in --credential-store") || !strings.Contains(r.stderr, "LATCH_CREDENTIAL_STORE") {
				t.Fatalf("the password in --credential-store: %v", r)
			}
			if db.kind == "postgres" && !strings.Contains(r.stderr, "PGPASSWORD") {
				t.Fatalf("the refusal does not name PGPASSWORD: %v", r)
			}
			wrong := e.machine(t, strings.Replace(url, testdb.Password, "not-"+testdb.Password, 1), key)
			r = wrong.run("auth", "token")
			noSecret("a wrong password", r)
			server, user := "PostgreSQL", "latch"
			if db.kind == "redis" {
				server, user = "Redis", "default"
			}
			if r.code != 2 || !strings.Contains(r.stderr, server+" refused the password for user "+user) ||
				strings.Contains(r.stderr, "try again") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Fatalf("a wrong store password: %v", r)
			}
			if db.kind == "postgres" {
				m.environ = append(m.environ, "PGPASSWORD="+testdb.Password)
				if r := m.run("--credential-store", strings.Replace(url, ":"+testdb.Password+"@", "@", 1), "auth", "token"); r.code != 0 {
					t.Fatalf("the password from PGPASSWORD: %v", r)
				}
			}
		})
	}
}

// A login on a machine with the wrong LATCH_STORE_KEY_FILE would re-seal
// the fleet's credential under its key and log every other machine out:
// it is refused (exit 2, naming the key file and --force) before the
// browser, and the fleet keeps working; --force replaces it and says the
// replaced set could not be revoked.
func TestFleetWrongKeyLogin(t *testing.T) {
	for _, db := range []fleetDB{fleetDBNamed("postgres"), fleetDBNamed("redis")} {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, oauthtest.Options{})
			url, _, _ := db.url(t)
			a := e.machine(t, url, storeKey(t))
			wrongKey := filepath.Join(t.TempDir(), "wrong.key")
			if err := os.WriteFile(wrongKey, []byte("another-key-another-key-another-"), 0o600); err != nil {
				t.Fatal(err)
			}
			b := e.machine(t, url, wrongKey)
			if r := a.run("auth", "login"); r.code != 0 {
				t.Fatalf("login: %v", r)
			}
			logins := e.counters().TokenCalls["authorization_code"]
			if logins == 0 {
				t.Fatal("the dev server counted no code grant for the login")
			}
			r := b.run("auth", "login")
			if r.code != 2 || !strings.Contains(r.stderr, "LATCH_STORE_KEY_FILE="+wrongKey) || !strings.Contains(r.stderr, "--force") {
				t.Fatalf("login with the wrong key: %v", r)
			}
			if n := e.counters().TokenCalls["authorization_code"]; n != logins {
				t.Fatalf("the refused login still logged in (%d code grants, want %d)", n, logins)
			}
			if r := a.run("api", "/v2/user"); r.code != 0 {
				t.Fatalf("the fleet after the refused login: %v", r)
			}
			r = b.run("auth", "login", "--force")
			if r.code != 0 || !strings.Contains(r.stderr, "it was not revoked") {
				t.Fatalf("login --force with the wrong key: %v", r)
			}
			if r := b.run("api", "/v2/user"); r.code != 0 {
				t.Fatalf("the forcing machine after its login: %v", r)
			}
		})
	}
}
