package stepup

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		h      string
		want   *Challenge
	}{
		{"scope", 403, `Bearer realm="api", error="insufficient_scope", scope="repo admin:org", error_description="need more"`,
			&Challenge{Error: "insufficient_scope", Scopes: []string{"repo", "admin:org"}, MaxAge: -1}},
		{"acr", 401, `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR mfa"`,
			&Challenge{Error: "insufficient_user_authentication", ACRValues: []string{"myACR", "mfa"}, MaxAge: -1}},
		{"max_age", 401, `Bearer error="insufficient_user_authentication", max_age="5"`,
			&Challenge{Error: "insufficient_user_authentication", MaxAge: 5}},
		{"no scope named", 403, `Bearer error="insufficient_scope"`, &Challenge{Error: "insufficient_scope", MaxAge: -1}},
		{"hostile scope", 403, "Bearer error=\"insufficient_scope\", scope=\"ok \x1b[2J bad\\\"quote\"",
			&Challenge{Error: "insufficient_scope", Scopes: []string{"ok"}, MaxAge: -1}},
		{"insufficient_scope on a 401", 401, `Bearer error="insufficient_scope", scope="x"`, nil},
		{"invalid_token", 401, `Bearer error="invalid_token"`, nil},
		{"none", 403, ``, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.h != "" {
				h.Set("WWW-Authenticate", tt.h)
			}
			got := Parse(tt.status, h)
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			if got == nil {
				return
			}
			if got.Error != tt.want.Error || !slices.Equal(got.Scopes, tt.want.Scopes) || !slices.Equal(got.ACRValues, tt.want.ACRValues) || got.MaxAge != tt.want.MaxAge {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnion(t *testing.T) {
	c := &Challenge{Scopes: []string{"repo", "admin"}}
	if got := c.Union([]string{"openid", "repo"}); strings.Join(got, " ") != "openid repo admin" {
		t.Errorf("Union = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`Bearer error="insufficient_scope", scope="a b"`)
	f.Add(`Bearer error="insufficient_user_authentication", acr_values="x", max_age="3"`)
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Www-Authenticate": {s}}
		for _, st := range []int{401, 403} {
			c := Parse(st, h)
			if c == nil {
				continue
			}
			for _, v := range append(slices.Clone(c.Scopes), c.ACRValues...) {
				if !scopeToken(v) || v == "" {
					t.Fatalf("value %q passed", v)
				}
			}
		}
	})
}
