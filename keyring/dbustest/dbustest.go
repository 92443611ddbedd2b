// Package dbustest starts private D-Bus session buses for tests of the
// keyring's failure modes: a bus with no Secret Service, and one whose
// Secret Service never answers.
package dbustest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dbus "github.com/godbus/dbus/v5"
)

const config = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a session bus with no activatable services (so no
// Secret Service) and returns its address. It is stopped at cleanup. The
// test is skipped when dbus-daemon is not installed.
func StartBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("dbus-daemon not installed (apt-get install dbus)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(config, "SOCKET", filepath.Join(dir, "bus"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(addr)
}

// hung answers nothing until release is closed.
type hung struct{ release chan struct{} }

func (h hung) Get(string, string) (dbus.Variant, *dbus.Error) {
	<-h.release
	return dbus.MakeVariant(false), nil
}

// HangSecretService claims org.freedesktop.secrets on the bus at addr and
// never answers a property read, like a wedged keyring daemon.
func HangSecretService(t testing.TB, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := hung{release: make(chan struct{})}
	t.Cleanup(func() {
		close(h.release)
		conn.Close()
	})
	for _, p := range []dbus.ObjectPath{"/org/freedesktop/secrets/collection/login", "/org/freedesktop/secrets/aliases/default"} {
		if err := conn.Export(h, p, "org.freedesktop.DBus.Properties"); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := conn.RequestName("org.freedesktop.secrets", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claim org.freedesktop.secrets: %v %v", r, err)
	}
}
