package endpoint

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://as.example", true},
		{"https://as.example/tenant", true},
		{"HTTPS://as.example", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.1.2.3", true},
		{"http://[::1]:9000/x", true},
		{"http://localhost:3000", true},
		{"http://LOCALHOST", true},
		{"http://as.example", false},
		{"http://10.0.0.1", false},
		{"http://[::2]", false},
		{"http://localhost.evil.example", false},
		{"http://127.0.0.1.evil.example", false},
		{"ftp://as.example", false},
		{"as.example", false},
		{"/token", false},
		{"", false},
		{"https://user:pass@as.example", false},
		{"http://%zz", false},

		{"http://[::ffff:127.0.0.1]/", true},
		{"http://[fe80::1%25eth0]", false},
		{"https://", false},
		{"://", false},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		var ue *URLError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("CheckURL(%q) = %T, want *URLError", tt.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("CheckURL(%q) = %q, leaks the password", tt.url, err)
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
