package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSensitive(t *testing.T) {
	for name, want := range map[string]bool{
		"access_token": true, "Refresh_Token": true, "code": true, "code_verifier": true,
		"client_secret": true, "device_code": true, "id_token": true, "password": true,
		"token": true, "assertion": true, "client_assertion": true, "subject_token": true,
		"X-Api-Key": true, "X-Auth-Token": true, "my_secret_thing": true, "Set-Cookie": true,
		"refresh_token_expires_in": false, "token_type": false, "token_type_hint": false,
		"token_endpoint": false, "token_endpoint_auth_methods_supported": false,
		"grant_type": false, "client_id": false, "state": false, "expires_in": false,
		"code_challenge": false, "scope": false, "Content-Type": false,
		"key": true, "sig": true, "signature": true, "jwt": true, "pwd": true, "pass": true,
		"X-Amz-Credential": true, "X-Amz-Signature": true, "X-Goog-Signature": true,
		"X-Auth-Key": true, "X-Access-Key": true, "Authentication": true, "X-Signature": true,
		"X-Custom-Token": true, "auth": true, "credential": true, "credentials": true,
		"otp": true, "pin": true, "private_key": true,
		"public_key": false, "key_id": false, "signature_method": false, "X-Amz-Date": false,
	} {
		if got := Sensitive(name); got != want {
			t.Errorf("Sensitive(%q) = %v, want %v", name, got, want)
		}
	}
}

const long = "gho_abcdefghijklmnopqrstuvwxyz0123"

func TestHeader(t *testing.T) {
	h := http.Header{
		"Authorization":       {"Bearer " + long},
		"Content-Type":        {"application/json"},
		"Cookie":              {"sid=" + long + "; theme=dark"},
		"Set-Cookie":          {"sid=" + long + "; Path=/; HttpOnly; Foo=" + long},
		"X-Api-Key":           {long},
		"Location":            {"http://127.0.0.1:5000/cb?code=" + long + "&state=xyz"},
		"Link":                {`<https://api.example/x?page=2&access_token=` + long + `>; rel="next"`},
		"Proxy-Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("id:"+long))},
	}
	orig := h.Clone()
	got := Header(h)
	fp := "[redacted fp:" + Fingerprint(long) + "]"
	for k, want := range map[string]string{
		"Authorization":       "Bearer " + fp,
		"Content-Type":        "application/json",
		"Cookie":              "sid=[redacted]; theme=[redacted]",
		"Set-Cookie":          "sid=[redacted]; Path=/; HttpOnly; Foo=[redacted]",
		"X-Api-Key":           fp,
		"Location":            "http://127.0.0.1:5000/cb?code=" + strings.ReplaceAll(fp, " ", "+") + "&state=xyz",
		"Link":                `<https://api.example/x?page=2&access_token=` + strings.ReplaceAll(fp, " ", "+") + `>; rel="next"`,
		"Proxy-Authorization": "Basic [redacted]",
	} {
		if g := got.Get(k); g != want {
			t.Errorf("%s: got %q, want %q", k, g, want)
		}
	}
	for k, v := range orig {
		if h.Get(k) != v[0] {
			t.Errorf("Header modified its input: %s = %q", k, h.Get(k))
		}
	}
}

func TestAuthorizationShapes(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer short":       "Bearer [redacted]",
		"token " + long:      "token [redacted fp:" + Fingerprint(long) + "]",
		long:                 "[redacted fp:" + Fingerprint(long) + "]",
		"Basic Zm9vOmJhcg==": "Basic [redacted]",
		"bad/scheme " + long: "[redacted fp:" + Fingerprint("bad/scheme "+long) + "]",
	} {
		if got := authorization(in); got != want {
			t.Errorf("authorization(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestForm(t *testing.T) {
	fp := "[redacted+fp:" + Fingerprint(long) + "]"
	for _, tc := range []struct{ in, want string }{
		{"grant_type=refresh_token&refresh_token=" + long + "&client_id=cli",
			"grant_type=refresh_token&refresh_token=" + fp + "&client_id=cli"},
		{"code=abc123&code_verifier=" + long + "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb",
			"code=[redacted]&code_verifier=" + fp + "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"},
		{"username=bob&password=" + long, "username=bob&password=[redacted]"},
		{"token=" + long + "&token_type_hint=refresh_token", "token=" + fp + "&token_type_hint=refresh_token"},
		{"a=1;access_token=" + long, "a=1;access_token=" + fp},
		{"access%5Ftoken=" + long, "access%5Ftoken=" + fp},
		{"refresh_token=&x=", "refresh_token=&x="},
		{`{"access_token":"` + long + `"}`, "[redacted]"},
		{"", ""},
		{"a&&b=2&", "a&&b=2&"},
	} {
		if got := string(Form([]byte(tc.in))); got != tc.want {
			t.Errorf("Form(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestJSON(t *testing.T) {
	fp := `"[redacted fp:` + Fingerprint(long) + `]"`
	for _, tc := range []struct{ in, want string }{
		{`{"access_token": "` + long + `", "token_type": "Bearer", "expires_in": 3600, "z": 1, "a": 2}`,
			`{"access_token": ` + fp + `, "token_type": "Bearer", "expires_in": 3600, "z": 1, "a": 2}`},
		{`{"data":[{"refresh_token":"` + long + `","id":7}],"code":123456}`,
			`{"data":[{"refresh_token":` + fp + `,"id":7}],"code":"[redacted]"}`},
		{`{"tokens":{"a":"` + long + `","b":["x",{"c":null}]},"ok":true}`,
			`{"tokens":{"a":` + fp + `,"b":["[redacted]",{"c":null}]},"ok":true}`},
		{`{"access\u005ftoken":"` + long + `"}`, `{"access\u005ftoken":` + fp + `}`},
		{`{"client_secret":{},"password":[]}`, `{"client_secret":{},"password":[]}`},
		{`["access_token","` + long + `"]`, `["access_token","` + long + `"]`},
		{`"just a string"`, `"just a string"`},
		{"{\n  \"id_token\": \"" + long + "\"\n}\n", "{\n  \"id_token\": " + fp + "\n}\n"},
		{`{"access_token":"` + long + `"`, "[invalid JSON body, 52 bytes, redacted]"},
		{`access_token=` + long, "[invalid JSON body, 47 bytes, redacted]"},
		{`{"a":1}{"id_token":"x"}`, `{"a":1}{"id_token":"[redacted]"}`},
	} {
		got := string(JSON([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("JSON(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if json.Valid([]byte(tc.in)) && !json.Valid([]byte(got)) {
			t.Errorf("JSON(%s) = %s: not valid JSON", tc.in, got)
		}
	}
}

func TestBody(t *testing.T) {
	for _, tc := range []struct{ ct, in, want string }{
		{"application/x-www-form-urlencoded", "refresh_token=abc", "refresh_token=[redacted]"},
		{"application/json; charset=utf-8", `{"access_token":"abc"}`, `{"access_token":"[redacted]"}`},
		{"application/problem+json", `{"token":"abc"}`, `{"token":"[redacted]"}`},
		{"text/plain", `{"token":"abc"}`, `{"token":"[redacted]"}`},
		{"text/html", "<p>your code is " + long + "</p>", "[text/html body, 54 bytes, redacted]"},
		{"", "access_token=" + long, "[untyped body, 47 bytes, redacted]"},
		{"text/html", "", ""},
	} {
		if got := string(Body(tc.ct, []byte(tc.in))); got != tc.want {
			t.Errorf("Body(%q, %q)\n got %q\nwant %q", tc.ct, tc.in, got, tc.want)
		}
	}
}

func TestBodyPrefix(t *testing.T) {
	full := `{"id":1,"refresh_token":"` + long + `","access_token":"` + long + `"}`
	for n := 0; n <= len(full); n++ {
		got := string(BodyPrefix("application/json", []byte(full[:n])))
		if strings.Contains(got, long[:8]) {
			t.Fatalf("BodyPrefix of %d bytes leaked: %s", n, got)
		}
		if !strings.HasPrefix(string(JSON([]byte(full))), got) {
			t.Fatalf("BodyPrefix of %d bytes = %s, not a prefix of the full redaction", n, got)
		}
	}
	if got, want := string(BodyPrefix("application/x-www-form-urlencoded", []byte("a=1&code=xyz&b"))), "a=1&code=[redacted]&b"; got != want {
		t.Errorf("form prefix: got %q, want %q", got, want)
	}
}

func TestURL(t *testing.T) {
	fp := "[redacted+fp:" + Fingerprint(long) + "]"
	for _, tc := range []struct{ in, want string }{
		{"https://h.example/p?access_token=" + long + "&page=2", "https://h.example/p?access_token=" + fp + "&page=2"},
		{"https://bob:" + long + "@h.example/", "https://bob:redacted@h.example/"},
		{"https://" + long + "@h.example/", "https://redacted@h.example/"},
		{"http://127.0.0.1/cb#access_token=" + long + "&state=s", "http://127.0.0.1/cb#access_token=" + fp + "&state=s"},
		{"https://h.example/a%2Fb?x=1#top", "https://h.example/a%2Fb?x=1#top"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		before := *u
		if got := URL(u); got != tc.want {
			t.Errorf("URL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if *u != before {
			t.Errorf("URL modified its input")
		}
	}
	if URL(nil) != "" {
		t.Error("URL(nil) not empty")
	}
}

func TestText(t *testing.T) {
	sec := "a+b/c d" + long
	in := "got " + sec + " and " + url.QueryEscape(sec) + " and " + `"` + sec + `"` + " and short x1"
	got := Text(in, sec, "", "x1")
	for _, leak := range []string{sec, url.QueryEscape(sec), "x1"} {
		if strings.Contains(got, leak) {
			t.Errorf("Text left %q in %q", leak, got)
		}
	}
	if !strings.HasPrefix(got, "got [redacted fp:") {
		t.Errorf("Text = %q, want a fingerprint marker", got)
	}
	if Text("nothing here") != "nothing here" {
		t.Error("Text without secrets changed its input")
	}
}

func TestJSONInsideAString(t *testing.T) {
	in := `{"echo":{"body":"{\"client_secret\":\"s3cr3t-value-123\",\"grant_type\":\"refresh_token\"}","n":1}}`
	out := string(JSON([]byte(in)))
	if strings.Contains(out, "s3cr3t-value-123") || !strings.Contains(out, "refresh_token") || !json.Valid([]byte(out)) {
		t.Errorf("JSON(%s) = %s", in, out)
	}
}

func TestServerText(t *testing.T) {
	in := "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 rejected \x1b[2J\u009b; see https://docs.example/errors/invalid_grant"
	out := Server(in)
	if strings.Contains(out, "eyJhbGciOiJIUzI1NiJ9") || strings.ContainsAny(out, "\x1b\u009b") {
		t.Errorf("Server(%q) = %q", in, out)
	}
	if !strings.Contains(out, "https://docs.example/errors/invalid_grant") || !strings.Contains(out, "rejected") {
		t.Errorf("Server(%q) = %q lost the prose", in, out)
	}
}

func TestStoreURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://latch:hunter2@db.example:5432/latch?sslmode=verify-full&sslpassword=hunter2": "postgres://latch@db.example:5432/latch?sslmode=verify-full",
		"postgres://db.example/latch?PASSWORD=hunter2&application_name=ci":                       "postgres://db.example/latch?application_name=ci",
		"redis://:hunter2@cache.example:6379/0":                                                  "redis://cache.example:6379/0",
		"redis://cache.example:6379/0?password=hunter2&db=2":                                     "redis://cache.example:6379/0?db=2",
		"rediss://user:hunter2@cache.example/?client_name=x&token=hunter2":                       "rediss://user@cache.example/?client_name=x",
		"postgres://latch:hun%zzter2@db":                                                         "postgres (connection string hidden)",
		"host=db password=hunter2":                                                               "postgres (connection string hidden)",
	} {
		if got := StoreURL(in, "postgres"); got != want && !(strings.HasPrefix(in, "redis") && got == want) {
			t.Errorf("StoreURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(StoreURL(in, "postgres"), "hunter2") {
			t.Errorf("StoreURL(%q) shows the password", in)
		}
	}
}
