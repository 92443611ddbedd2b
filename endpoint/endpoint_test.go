package endpoint

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://auth.example.com", true},
		{"HTTPS://auth.example.com/x", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://127.1.2.3", true},
		{"http://[::1]:9000", true},
		{"http://localhost/token", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"http://auth.example.com", false},
		{"http://10.0.0.1", false},
		{"http://[fe80::1%25eth0]", false},
		{"http://127.0.0.1.example.com", false},
		{"ftp://auth.example.com", false},
		{"https://user:secret@auth.example.com", false},
		{"/token", false},
		{"https://", false},
		{"://", false},
	} {
		err := CheckURL(c.url)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", c.url, err, c.ok)
		}
		var ue *URLError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("CheckURL(%q): %T, want *URLError", c.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("CheckURL(%q) shows the password: %v", c.url, err)
		}
	}
}

// FuzzIsLoopback: IsLoopback (net/netip, which the small helpers link
// without package net) says what net.ParseIP says, for every host.
func FuzzIsLoopback(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1",
		"127.000.0.1", "::1%eth0", "0:0:0:0:0:0:0:1", "128.0.0.1", "1.2.3.4", "", "[", "::", "0.0.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		want := strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, net.ParseIP says %v", host, got, want)
		}
	})
}
