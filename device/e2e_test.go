package device_test

import (
	"errors"
	"testing"

	"github.com/latchdev/latch/device"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
)

// TestDeviceDevServer runs the device grant against the dev server, which
// approves after two pending polls. The poll sleeps for real: the server
// answers slow_down to early polls.
func TestDeviceDevServer(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{DeviceApproveAfter: 2})
	defer srv.Close()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	cfg := discovery.Config(m, "latch-cli", []string{"offline_access"})
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if code.UserCode == "" || code.VerificationURI == "" || code.Interval <= 0 {
		t.Fatalf("code = %s", code)
	}
	tok, err := device.AccessToken(t.Context(), cfg, code)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if tok.AccessToken == "" || !tok.Refreshable() || tok.Issuer != srv.URL {
		t.Errorf("token: access=%t refreshable=%t issuer=%q", tok.AccessToken != "", tok.Refreshable(), tok.Issuer)
	}
	c := srv.Counters()
	if c.DeviceGrants != 1 || c.SlowDowns != 0 || c.DevicePolls != 3 {
		t.Errorf("counters: grants %d, slow_downs %d, polls %d; want 1, 0, 3", c.DeviceGrants, c.SlowDowns, c.DevicePolls)
	}
}

// TestDeviceDevServerDenied: the person denies the code on the server.
func TestDeviceDevServerDenied(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{})
	defer srv.Close()
	m, err := discovery.Fetch(t.Context(), nil, srv.URL)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	cfg := discovery.Config(m, "latch-cli", nil)
	code, err := device.Auth(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := srv.DenyDevice(code.UserCode); err != nil {
		t.Fatalf("DenyDevice: %v", err)
	}
	_, err = device.AccessToken(t.Context(), cfg, code)
	if !errors.Is(err, device.ErrDenied) {
		t.Fatalf("got %v, want device.ErrDenied", err)
	}
}
