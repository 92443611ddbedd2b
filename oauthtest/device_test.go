package oauthtest

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

type deviceAnswer struct {
	tokenAnswer
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	Interval                int    `json:"interval"`
	DeviceExpiresIn         int    `json:"expires_in"`
}

func startDevice(t *testing.T, s *Server) deviceAnswer {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/device_authorization", url.Values{"client_id": {testClient}, "scope": {"repo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d deviceAnswer
	if err := decodeJSON(resp, &d); err != nil || resp.StatusCode != http.StatusOK || d.DeviceCode == "" || d.UserCode == "" {
		t.Fatalf("device authorization: got %d %+v %v", resp.StatusCode, d, err)
	}
	return d
}

func poll(t *testing.T, s *Server, deviceCode string) tokenAnswer {
	t.Helper()
	return postForm(t, s.URL+"/oauth/token", url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode},
		"client_id":   {testClient},
	})
}

func TestDeviceFlow(t *testing.T) {
	t.Run("pending, slow_down, approved on the page", func(t *testing.T) {
		s, clk := start(t, Options{DeviceInterval: 2 * time.Second})
		d := startDevice(t, s)
		if d.VerificationURI != s.URL+"/device" || d.Interval != 2 || d.DeviceExpiresIn != 600 {
			t.Fatalf("got verification_uri %q interval %d expires_in %d, want %s/device 2 600", d.VerificationURI, d.Interval, d.DeviceExpiresIn, s.URL)
		}
		wantError(t, poll(t, s, d.DeviceCode), 400, "authorization_pending")
		wantError(t, poll(t, s, d.DeviceCode), 400, "slow_down")
		clk.advance(2 * time.Second)
		wantError(t, poll(t, s, d.DeviceCode), 400, "authorization_pending")

		if err := s.Browser()(context.Background(), d.VerificationURIComplete); err != nil {
			t.Fatalf("approve on the page: %v", err)
		}
		clk.advance(2 * time.Second)
		a := poll(t, s, d.DeviceCode)
		wantTokens(t, a)
		wantResource(t, s, a.AccessToken, http.StatusOK)
		wantTokens(t, refresh(t, s, a.RefreshToken))

		clk.advance(2 * time.Second)
		wantError(t, poll(t, s, d.DeviceCode), 400, "expired_token") // a device code is redeemed once
		c := s.Counters()
		if c.DevicePolls != 5 || c.SlowDowns != 1 || c.DeviceGrants != 1 || c.TokenCalls["urn:ietf:params:oauth:grant-type:device_code"] != 5 {
			t.Errorf("counters: got %+v, want 5 polls, 1 slow_down, 1 device grant", c)
		}
	})

	t.Run("DeviceApproveAfter", func(t *testing.T) {
		s, clk := start(t, Options{DeviceApproveAfter: 2})
		d := startDevice(t, s)
		for range 2 {
			wantError(t, poll(t, s, d.DeviceCode), 400, "authorization_pending")
			clk.advance(time.Second)
		}
		wantTokens(t, poll(t, s, d.DeviceCode))
	})

	t.Run("ApproveDevice", func(t *testing.T) {
		s, _ := start(t, Options{})
		d := startDevice(t, s)
		if err := s.ApproveDevice(d.UserCode); err != nil {
			t.Fatal(err)
		}
		if err := s.ApproveDevice(d.UserCode); err == nil {
			t.Error("second approval: got nil, want an error")
		}
		wantTokens(t, poll(t, s, d.DeviceCode))
	})

	t.Run("denied", func(t *testing.T) {
		s, _ := start(t, Options{})
		d := startDevice(t, s)
		resp, err := http.PostForm(s.URL+"/device", url.Values{"user_code": {d.UserCode}, "action": {"deny"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("deny on the page: got %d", resp.StatusCode)
		}
		wantError(t, poll(t, s, d.DeviceCode), 400, "access_denied")
	})

	t.Run("denied over /_dev", func(t *testing.T) {
		s, _ := start(t, Options{})
		d := startDevice(t, s)
		if a := postForm(t, s.URL+"/_dev/device/deny", url.Values{"user_code": {d.UserCode}}); a.Status != http.StatusOK {
			t.Fatalf("/_dev/device/deny: got %d", a.Status)
		}
		wantError(t, poll(t, s, d.DeviceCode), 400, "access_denied")
	})

	t.Run("expired", func(t *testing.T) {
		s, clk := start(t, Options{DeviceCodeTTL: time.Minute})
		d := startDevice(t, s)
		clk.advance(time.Minute + time.Second)
		wantError(t, poll(t, s, d.DeviceCode), 400, "expired_token")
		if err := s.ApproveDevice(d.UserCode); err == nil {
			t.Error("approving an expired code: got nil, want an error")
		}
	})

	t.Run("wrong user code on the page", func(t *testing.T) {
		s, _ := start(t, Options{})
		resp, err := http.PostForm(s.URL+"/device", url.Values{"user_code": {"NOPE-NOPE"}, "action": {"approve"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %d, want 400", resp.StatusCode)
		}
	})

	t.Run("unknown device code", func(t *testing.T) {
		s, _ := start(t, Options{})
		a := poll(t, s, "unknown")
		if a.Status != http.StatusBadRequest || a.Error == "" || a.Error == "authorization_pending" {
			t.Fatalf("got %d %q, want a terminal error", a.Status, a.Error)
		}
	})
}
