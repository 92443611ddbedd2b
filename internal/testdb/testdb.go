// Package testdb starts private PostgreSQL and Redis servers for tests, on
// loopback, in temporary directories, from the programs Debian installs
// (postgresql, redis-server). A test skips, saying which package is
// missing, only when the programs are absent.
package testdb

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
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

// Postgres is a running PostgreSQL server.
type Postgres struct {
	URL     string // postgres://latch:PASSWORD@127.0.0.1:PORT/latch?sslmode=disable
	dir     string
	port    int
	asUser  *syscall.Credential
	pgCtl   string
	t       testing.TB
	running bool
}

// StartPostgres runs initdb and pg_ctl in a temporary directory. As root
// (initdb refuses root) the server runs as the postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb, pgCtl := pgBin("initdb"), pgBin("pg_ctl")
	if initdb == "" || pgCtl == "" {
		t.Skip("PostgreSQL is not installed (Debian package postgresql)")
	}
	p := &Postgres{t: t, pgCtl: pgCtl, port: freePort(t)}
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
		p.asUser = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.asUser}
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
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", p.port, filepath.Dir(p.dir))
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.asUser}
	_ = cmd.Run()
}

// Redis is a running redis-server.
type Redis struct {
	URL  string // redis://:PASSWORD@127.0.0.1:PORT/0
	Addr string
	cmd  *exec.Cmd
	t    testing.TB
	args []string
}

// StartRedis runs redis-server on a free loopback port with a password
// and no persistence.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian package redis-server)")
	}
	port := freePort(t)
	dir := t.TempDir()
	r := &Redis{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	r.URL = fmt.Sprintf("redis://:%s@%s/0", Password, r.Addr)
	r.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--requirepass", Password,
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"}
	r.cmd = exec.Command(bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", r.Addr)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}
