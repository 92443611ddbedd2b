package jsoncolor

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name, in, indent, want string
		color                  bool
	}{
		{"scalar", `42`, "  ", "42\n", false},
		{"empty", `{} []`, "  ", "{}\n[]\n", false},
		{"object", `{"a":1,"b":[true,null,"x<y"],"c":{}}`, "  ",
			"{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null,\n    \"x<y\"\n  ],\n  \"c\": {}\n}\n", false},
		{"escapes kept", `{"a\\\":b" : "c:\u00e9\\"}`, "", `{"a\\\":b":"c:\u00e9\\"}` + "\n", false},
		{"key after escape", `{"k\\":"v"}`, "", "\x1b[1;38m{\x1b[m\x1b[1;34m\"k\\\\\"\x1b[m\x1b[1;38m:\x1b[m\x1b[32m\"v\"\x1b[m\x1b[1;38m}\x1b[m\n", true},
		{"compact", `{ "a" : [ 1 , 2 ] }`, "", "{\"a\":[1,2]}\n", false},
		{"number kept", `[1.50, 1e100, 12345678901234567890]`, "",
			"[1.50,1e100,12345678901234567890]\n", false},
		{"color", `{"k":"v","n":null,"b":false,"i":1}`, "",
			"\x1b[1;38m{\x1b[m\x1b[1;34m\"k\"\x1b[m\x1b[1;38m:\x1b[m\x1b[32m\"v\"\x1b[m\x1b[1;38m,\x1b[m" +
				"\x1b[1;34m\"n\"\x1b[m\x1b[1;38m:\x1b[m\x1b[36mnull\x1b[m\x1b[1;38m,\x1b[m" +
				"\x1b[1;34m\"b\"\x1b[m\x1b[1;38m:\x1b[m\x1b[33mfalse\x1b[m\x1b[1;38m,\x1b[m" +
				"\x1b[1;34m\"i\"\x1b[m\x1b[1;38m:\x1b[m1\x1b[1;38m}\x1b[m\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, strings.NewReader(tt.in), tt.indent, tt.color); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteRoundTrip(t *testing.T) {
	in := `{"users":[{"login":"a\"b","id":1,"tags":["x","\u00e9\n"],"meta":{"ok":true,"n":null}}],"total":1}`
	var b bytes.Buffer
	if err := Write(&b, strings.NewReader(in), "  ", false); err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b.String())
	}
	json.Unmarshal([]byte(in), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("got %s, want %s", gb, wb)
	}
}

func TestWriteSyntaxError(t *testing.T) {
	for _, in := range []string{`{"a":`, `{"a" 1}`, `[1,]`, `nope`} {
		var b bytes.Buffer
		if err := Write(&b, strings.NewReader(in), "  ", false); err == nil {
			t.Errorf("Write(%q): got nil error, want one", in)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	var items []map[string]any
	for i := range 1000 {
		items = append(items, map[string]any{"id": i, "name": "item", "ok": true, "tags": []string{"a", "b"}, "none": nil})
	}
	in, _ := json.Marshal(items)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := Write(io.Discard, bytes.NewReader(in), "  ", true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibIndent is the baseline: encoding/json.Indent, no colour.
func BenchmarkStdlibIndent(b *testing.B) {
	var items []map[string]any
	for i := range 1000 {
		items = append(items, map[string]any{"id": i, "name": "item", "ok": true, "tags": []string{"a", "b"}, "none": nil})
	}
	in, _ := json.Marshal(items)
	b.SetBytes(int64(len(in)))
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := json.Indent(&out, in, "", "  "); err != nil {
			b.Fatal(err)
		}
	}
}
