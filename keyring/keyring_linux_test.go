package keyring

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/keyring/dbustest"
)

func TestProbeNoBus(t *testing.T) {
	for _, addr := range []string{"", "unix:path=/nonexistent/latch-bus"} {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
		if _, h := busAddress(); h.OK {
			t.Skip("a session bus is discoverable at /run/user/UID/bus")
		}
		h := New("latch-test").Probe(ctx)
		if h.OK || h.Reason != ReasonNoBus || !strings.Contains(h.Message, "no D-Bus session bus") {
			t.Fatalf("addr %q: got %+v, want %s", addr, h, ReasonNoBus)
		}
		err := New("latch-test").Save(ctx, key, nil, token("x", 1))
		var ke *Error
		if !errors.As(err, &ke) || ke.Reason != ReasonNoBus || !errors.Is(err, latch.ErrStoreUnavailable) {
			t.Fatalf("Save without bus: got %v, want *Error(%s)", err, ReasonNoBus)
		}
	}
}

func TestProbeBusWithoutSecretService(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", dbustest.StartBus(t))
	h := New("latch-test").Probe(ctx)
	if h.OK || h.Reason != ReasonNoSecretService {
		t.Fatalf("got %+v, want %s", h, ReasonNoSecretService)
	}
}

func TestProbeHungSecretService(t *testing.T) {
	addr := dbustest.StartBus(t)
	dbustest.HangSecretService(t, addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	s := New("latch-test")
	s.Timeout = 300 * time.Millisecond
	h := s.Probe(ctx)
	if h.OK || h.Reason != ReasonTimeout || !strings.Contains(h.Message, "timed out") {
		t.Fatalf("got %+v, want %s", h, ReasonTimeout)
	}
}

func TestCallTimeout(t *testing.T) {
	s := New("latch-test")
	s.Timeout = 50 * time.Millisecond
	if _, h := busAddress(); !h.OK {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+os.Args[0]) // any existing path passes the bus check
	}
	block := make(chan struct{})
	defer close(block)
	err := s.call(ctx, "load", func() error { <-block; return nil })
	var ke *Error
	if !errors.As(err, &ke) || ke.Reason != ReasonTimeout || !errors.Is(err, latch.ErrStoreUnavailable) {
		t.Fatalf("got %v, want a timeout *Error", err)
	}
}
