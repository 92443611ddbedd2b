//go:build linux

package keyring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

const secretsName = "org.freedesktop.secrets"

// busAddress returns the session bus address the way godbus finds it,
// without its autolaunch: godbus would run dbus-launch and start a stray
// bus, which then hangs or fails later instead of now.
func busAddress() (string, Health) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		for _, part := range strings.Split(a, ";") {
			if p, ok := strings.CutPrefix(part, "unix:path="); ok {
				if i := strings.IndexByte(p, ','); i >= 0 {
					p = p[:i]
				}
				if _, err := os.Stat(p); err != nil {
					return "", Health{Reason: ReasonNoBus,
						Message: fmt.Sprintf("no D-Bus session bus (socket %s from DBUS_SESSION_BUS_ADDRESS is missing)", p)}
				}
			}
		}
		return a, Health{OK: true}
	}
	sock := "/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"
	if _, err := os.Stat(sock); err == nil {
		return "unix:path=" + sock, Health{OK: true}
	}
	return "", Health{Reason: ReasonNoBus, Message: "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)"}
}

func busCheck(op string) error {
	if _, h := busAddress(); !h.OK {
		return &Error{Op: op, Reason: h.Reason, Msg: h.Message}
	}
	return nil
}

// probePlatform checks the bus, the Secret Service and the collection
// go-keyring writes to, on a private connection bounded by ctx.
func probePlatform(ctx context.Context, timeout time.Duration) Health {
	addr, h := busAddress()
	if !h.OK {
		return h
	}
	type res struct {
		c   *dbus.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := dbus.Connect(addr, dbus.WithContext(ctx))
		ch <- res{c, err}
	}()
	var conn *dbus.Conn
	select {
	case r := <-ch:
		if r.err != nil {
			return Health{Reason: ReasonNoBus, Message: "cannot connect to the D-Bus session bus: " + r.err.Error()}
		}
		conn = r.c
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return timedOut(timeout, "connecting to the session bus")
	}
	defer conn.Close()

	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned); err != nil {
		return busErr(ctx, timeout, "asking the bus for the Secret Service", err)
	}
	if !owned {
		var names []string
		if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
			return busErr(ctx, timeout, "asking the bus for the Secret Service", err)
		}
		if !slices.Contains(names, secretsName) {
			return Health{Reason: ReasonNoSecretService,
				Message: "no Secret Service on the D-Bus session bus (start gnome-keyring-daemon or KeePassXC)"}
		}
	}
	// go-keyring writes to the "login" collection, else the default alias.
	var locked bool
	err := errNoCollection
	for _, p := range []dbus.ObjectPath{"/org/freedesktop/secrets/collection/login", "/org/freedesktop/secrets/aliases/default"} {
		var v dbus.Variant
		err = conn.Object(secretsName, p).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0,
			"org.freedesktop.Secret.Collection", "Locked").Store(&v)
		if err == nil {
			locked, _ = v.Value().(bool)
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if ctx.Err() == nil && !isDBusError(err, "org.freedesktop.DBus.Error.ServiceUnknown") {
			return Health{Reason: ReasonLocked, Message: "the Secret Service has no default collection (creating one needs a desktop prompt)"}
		}
		return busErr(ctx, timeout, "asking the Secret Service for its collection", err)
	}
	if locked {
		return Health{Reason: ReasonLocked,
			Message: "the keyring collection is locked (unlock it in a desktop session, or `gnome-keyring-daemon --unlock`)"}
	}
	return Health{OK: true}
}

var errNoCollection = errors.New("no collection")

func timedOut(timeout time.Duration, doing string) Health {
	return Health{Reason: ReasonTimeout, Message: fmt.Sprintf("keyring timed out after %s %s", timeout, doing)}
}

func busErr(ctx context.Context, timeout time.Duration, doing string, err error) Health {
	if ctx.Err() != nil {
		return timedOut(timeout, doing)
	}
	if r, msg, ok := classifyPlatform(err); ok {
		return Health{Reason: r, Message: msg}
	}
	return Health{Reason: ReasonError, Message: doing + ": " + err.Error()}
}

func isDBusError(err error, name string) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name == name
	}
	var dp *dbus.Error
	return errors.As(err, &dp) && dp.Name == name
}

func classifyPlatform(err error) (Reason, string, bool) {
	var name string
	var de dbus.Error
	var dp *dbus.Error
	switch {
	case errors.As(err, &de):
		name = de.Name
	case errors.As(err, &dp):
		name = dp.Name
	default:
		return "", "", false
	}
	switch name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return ReasonNoSecretService, "no Secret Service on the D-Bus session bus", true
	case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.TimedOut":
		return ReasonTimeout, "the Secret Service did not answer", true
	case "org.freedesktop.Secret.Error.IsLocked":
		return ReasonLocked, "the keyring collection is locked", true
	case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.NotSupported":
		return ReasonReadOnly, "the keyring refuses writes", true
	}
	return ReasonError, "the Secret Service answered " + name, true
}
