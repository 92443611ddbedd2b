// Package testdb starts private PostgreSQL and Redis servers for tests, on
// loopback, in temporary directories, from the programs Debian installs
// (postgresql, redis-server). A test skips, saying which package is
// missing, only when the programs are absent.
package testdb

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Password is the password of the PostgreSQL and Redis servers started
// here; tests check that it never appears in output.
const Password = "pw-0123456789-not-to-be-shown"

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func pgBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(m) > 0 {
		return m[len(m)-1]
	}
	return ""
}

// runUser is the user a server runs as when the tests run as root.
type runUser struct{ uid, gid uint32 }

// Postgres is a running PostgreSQL server.
type Postgres struct {
	URL     string // postgres://latch:PASSWORD@127.0.0.1:PORT/latch?sslmode=disable
	dir     string
	port    int
	asUser  *runUser
	pgCtl   string
	t       testing.TB
	running bool
	durable bool
}

// StartPostgres runs initdb and pg_ctl in a temporary directory. As root
// (initdb refuses root) the server runs as the postgres user. It does not
// fsync, which tests need not pay for.
func StartPostgres(t testing.TB) *Postgres { return startPostgres(t, false) }

// StartDurablePostgres is StartPostgres with fsync on, as a credential
// store is deployed: what benchmarks measure.
func StartDurablePostgres(t testing.TB) *Postgres { return startPostgres(t, true) }

func startPostgres(t testing.TB, durable bool) *Postgres {
	t.Helper()
	initdb, pgCtl := pgBin("initdb"), pgBin("pg_ctl")
	if initdb == "" || pgCtl == "" {
		t.Skip("PostgreSQL is not installed (Debian package postgresql)")
	}
	p := &Postgres{t: t, pgCtl: pgCtl, port: freePort(t), durable: durable}
	base, err := os.MkdirTemp("", "latch-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	p.dir = filepath.Join(base, "data")
	pwfile := filepath.Join(base, "pw")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.asUser = &runUser{uid: uint32(uid), gid: uint32(gid)}
		for _, f := range []string{base, pwfile} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.run(initdb, "-D", p.dir, "-U", "latch", "--pwfile", pwfile, "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync")
	p.Start()
	t.Cleanup(p.Stop)
	p.URL = fmt.Sprintf("postgres://latch:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, p.port)
	return p
}

func (p *Postgres) run(prog string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(prog, args...)
	runAs(cmd, p.asUser)
	cmd.Dir = filepath.Dir(p.dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("%s: %v\n%s", filepath.Base(prog), err, out.String())
	}
}

// Start starts the server (again).
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", p.port, filepath.Dir(p.dir))
	if !p.durable {
		opts += " -c fsync=off"
	}
	p.run(p.pgCtl, "-D", p.dir, "-o", opts, "-l", filepath.Join(filepath.Dir(p.dir), "log"), "-w", "-t", "60", "start")
	p.running = true
}

// Stop stops the server at once (connections are cut).
func (p *Postgres) Stop() {
	if !p.running {
		return
	}
	p.running = false
	cmd := exec.Command(p.pgCtl, "-D", p.dir, "-m", "immediate", "-w", "stop")
	runAs(cmd, p.asUser)
	_ = cmd.Run()
}

// Redis is a running redis-server.
type Redis struct {
	URL  string // redis://:PASSWORD@127.0.0.1:PORT/0
	Addr string
	cmd  *exec.Cmd
	t    testing.TB
	bin  string
	args []string
}

// StartRedis runs redis-server on a free loopback port with a password
// and no persistence.
func StartRedis(t testing.TB) *Redis { return startRedis(t, false) }

// StartDurableRedis is StartRedis keeping every acknowledged write (an
// append-only file, fsync always), as a credential store should be
// configured, so that it can be killed and started again (Start).
func StartDurableRedis(t testing.TB) *Redis { return startRedis(t, true) }

func startRedis(t testing.TB, durable bool) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian package redis-server)")
	}
	port := freePort(t)
	dir := t.TempDir()
	r := &Redis{t: t, bin: bin, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	r.URL = fmt.Sprintf("redis://:%s@%s/0", Password, r.Addr)
	aof := []string{"--appendonly", "no"}
	if durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	r.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--requirepass", Password,
		"--save", "", "--dir", dir, "--protected-mode", "yes"}, aof...)
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Start starts the server (again, after Stop) and waits until it listens.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	if !listening(r.Addr) {
		r.t.Fatalf("redis-server did not listen on %s", r.Addr)
	}
}

// Restart kills the server and starts it again, for use off the test's
// goroutine (it reports instead of failing the test).
func (r *Redis) Restart() error {
	r.Stop()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	if !listening(r.Addr) {
		return fmt.Errorf("redis-server did not listen on %s", r.Addr)
	}
	return nil
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// PgBouncer is a running pgbouncer in front of a Postgres.
type PgBouncer struct {
	URL  string // postgres://latch:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
	mu   sync.Mutex
	cmd  *exec.Cmd
	args []string
	as   *runUser
	addr string
	log  string
}

// Log returns pgbouncer's log so far, for a failing test to show.
func (b *PgBouncer) Log() string {
	out, _ := os.ReadFile(b.log)
	return string(out)
}

// StartPgBouncer runs pgbouncer (Debian package pgbouncer) in session
// pooling mode in front of p, with SCRAM for its own clients, so that a
// client's connection reuses a server connection instead of starting a
// PostgreSQL backend. Session mode keeps latch's session advisory lock
// on one server connection; DISCARD ALL releases it when the client goes.
func StartPgBouncer(t testing.TB, p *Postgres) *PgBouncer {
	t.Helper()
	return StartPgBouncerMode(t, p, "session")
}

// StartPgBouncerMode is StartPgBouncer with pool_mode set to mode
// ("session" or "transaction"). In transaction mode a client holds a
// server connection only for one transaction: a session advisory lock
// stays behind on a server connection that the next client gets.
func StartPgBouncerMode(t testing.TB, p *Postgres, mode string) *PgBouncer {
	t.Helper()
	return StartPgBouncerPool(t, p, mode, 40)
}

// StartPgBouncerPool is StartPgBouncerMode with default_pool_size set to
// size: at most that many server connections (pgbouncer's default is 20).
func StartPgBouncerPool(t testing.TB, p *Postgres, mode string, size int) *PgBouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/pgbouncer"); err != nil {
			t.Skip("pgbouncer is not installed (Debian package pgbouncer)")
		}
		bin = "/usr/sbin/pgbouncer"
	}
	dir := filepath.Join(filepath.Dir(p.dir), fmt.Sprintf("pgbouncer-%s-%d", mode, size))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = %s
server_reset_query = DISCARD ALL
server_login_retry = 1
max_client_conn = 500
default_pool_size = %d
logfile = %s
`, p.port, port, filepath.Join(dir, "users"), mode, size, filepath.Join(dir, "log"))
	// The server's own SCRAM verifier: pgbouncer checks a client's proof
	// without running PBKDF2 for every connection, and logs in to the
	// server with the client key that proof reveals (SCRAM pass-through).
	verifier, err := p.verifier()
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"pgbouncer.ini": ini, "users": fmt.Sprintf("%q %q\n", "latch", verifier)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if p.asUser != nil {
		for _, f := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "users")} {
			if err := os.Chown(f, int(p.asUser.uid), int(p.asUser.gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := &PgBouncer{URL: fmt.Sprintf("postgres://latch:%s@127.0.0.1:%d/postgres?sslmode=disable", Password, port),
		args: []string{bin, filepath.Join(dir, "pgbouncer.ini")}, as: p.asUser, addr: fmt.Sprintf("127.0.0.1:%d", port),
		log: filepath.Join(dir, "log")}
	t.Cleanup(b.stop)
	if out, err := b.start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pgbouncer: %v:\n%s%s", err, out, log)
	}
	return b
}

func (b *PgBouncer) start() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmd = exec.Command(b.args[0], b.args[1:]...)
	runAs(b.cmd, b.as)
	var out bytes.Buffer
	b.cmd.Stdout, b.cmd.Stderr = &out, &out
	if err := b.cmd.Start(); err != nil {
		return "", err
	}
	if !listening(b.addr) {
		return out.String(), fmt.Errorf("did not listen on %s", b.addr)
	}
	return "", nil
}

func (b *PgBouncer) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

// Restart kills pgbouncer (its clients' connections are cut) and starts
// it again on the same port.
func (b *PgBouncer) Restart() error {
	b.stop()
	_, err := b.start()
	return err
}

// listening waits up to 10 s for a server to accept connections at addr.
func listening(addr string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifier returns the latch role's SCRAM verifier from pg_authid.
func (p *Postgres) verifier() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var v string
	err = c.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = 'latch'`).Scan(&v)
	return v, err
}
