package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/latchdev/latch/oauthtest"
)

// BenchmarkLocalStorm is the coordination cost on one machine: N = 8,
// 32, 64 `latch api` processes on an expired token (…/storm) and the same
// batch on a valid token (…/valid), on the file store and, when a
// Secret Service answers on the session bus, the keyring. A storm should
// cost about one refresh plus N reads (latch.Waiter): goal, storm at most
// 1.1× valid at every N.
//
//	dbus-run-session -- sh -c 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
//	  go test -run "^$" -bench LocalStorm -benchtime 5x ./bench/'
func BenchmarkLocalStorm(b *testing.B) {
	dir := b.TempDir()
	f := &fleet{latch: filepath.Join(dir, "latch"), dev: filepath.Join(dir, "latch-dev"), keyFile: filepath.Join(dir, "store.key")}
	for bin, pkg := range map[string]string{f.latch: "../cmd/latch", f.dev: "../cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	os.WriteFile(f.keyFile, benchKey, 0o600)
	f.srv = oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	b.Cleanup(f.srv.Close)
	stores := []string{"file"}
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		stores = append(stores, "keyring")
	}
	for _, store := range stores {
		for _, n := range []int{8, 32, 64} {
			b.Run(fmt.Sprintf("%s/N=%d/storm", store, n), func(b *testing.B) { f.batch(b, store, 1, n, nil, true) })
			b.Run(fmt.Sprintf("%s/N=%d/valid", store, n), func(b *testing.B) { f.batch(b, store, 1, n, nil, false) })
		}
	}
}
