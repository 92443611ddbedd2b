package credstore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/keyring"
	"github.com/latchdev/latch/keyring/dbustest"
)

func noBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err == nil {
		t.Skip("a session bus is discoverable at /run/user/UID/bus")
	}
}

// noKeyring makes the keyring unreachable: no session bus.
func noKeyring(t *testing.T) { noBus(t) }

func TestAutoFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T)
		reason keyring.Reason
		says   string
	}{
		{"no bus", noBus, keyring.ReasonNoBus, "no D-Bus session bus"},
		{"bus without secret service", func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", dbustest.StartBus(t))
		}, keyring.ReasonNoSecretService, "no Secret Service"},
		{"secret service hangs", func(t *testing.T) {
			addr := dbustest.StartBus(t)
			dbustest.HangSecretService(t, addr)
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
		}, keyring.ReasonTimeout, "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			dir := t.TempDir()
			opts := Options{Dir: dir, Mode: Auto, Timeout: 500 * time.Millisecond}
			c, err := Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != KindFile || !c.Fallback || c.Health.Reason != tc.reason {
				t.Fatalf("got kind %s fallback %v health %+v; want file fallback for %s", c.Kind, c.Fallback, c.Health, tc.reason)
			}
			for _, want := range []string{"keyring unavailable", tc.says, "storing credentials in " + dir, "0600"} {
				if !strings.Contains(c.Notice, want) {
					t.Errorf("notice %q lacks %q", c.Notice, want)
				}
			}
			mustWork(t, c)

			opts.Mode = Keyring
			_, err = Open(ctx, opts)
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, latch.ErrStoreUnavailable) || ue.Health.Reason != tc.reason ||
				!strings.Contains(err.Error(), "open keyring: ") {
				t.Fatalf("mode keyring: got %v, want *UnavailableError(%s)", err, tc.reason)
			}
		})
	}
}
