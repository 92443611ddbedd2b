package cli

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestAPINextLink(t *testing.T) {
	base, _ := url.Parse("https://api.example/v2/items?page=1")
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, ""},
		{"absolute", []string{`<https://api.example/v2/items?page=2>; rel="next"`}, "https://api.example/v2/items?page=2"},
		{"relative", []string{`</v2/items?page=2>; rel="next"`}, "https://api.example/v2/items?page=2"},
		{"relative to path", []string{`<?page=3>; rel=next`}, "https://api.example/v2/items?page=3"},
		{"among others", []string{`<https://a/first>; rel="first", <https://a/n>; rel="next", <https://a/last>; rel="last"`}, "https://a/n"},
		{"several values", []string{`<https://a/prev>; rel="prev"`, `<https://a/n>; rel="next"`}, "https://a/n"},
		{"rel list, case", []string{`<https://a/n>; title="x, y; z"; rel="last NEXT"`}, "https://a/n"},
		{"comma in target", []string{`<https://a/x?q=a,b>; rel="next"`}, "https://a/x?q=a,b"},
		{"first rel wins", []string{`<https://a/n>; rel="prev"; rel="next"`}, ""},
		{"no next", []string{`<https://a/p>; rel="prev"`}, ""},
		{"garbage", []string{`nonsense, <https://a/n>; rel="next"`}, "https://a/n"},
		{"unterminated", []string{`<https://a/n; rel="next"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextLink(base, tt.values); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAPIParseFields(t *testing.T) {
	tests := []struct {
		name   string
		fields []apiField
		want   string // JSON
	}{
		{"raw stays string", []apiField{{raw: "a=1"}, {raw: "b=true"}, {raw: "c=@x"}}, `{"a":"1","b":"true","c":"@x"}`},
		{"typed", []apiField{{raw: "a=1", typed: true}, {raw: "b=true", typed: true}, {raw: "c=null", typed: true},
			{raw: "d=-2.5e3", typed: true}, {raw: "e=0x10", typed: true}, {raw: "f=Inf", typed: true}, {raw: "g=01", typed: true}},
			`{"a":1,"b":true,"c":null,"d":-2.5e3,"e":"0x10","f":"Inf","g":"01"}`},
		{"value with =", []apiField{{raw: "q=a=b"}}, `{"q":"a=b"}`},
		{"empty value", []apiField{{raw: "q="}}, `{"q":""}`},
		{"nested", []apiField{{raw: "a[b][c]=1"}, {raw: "a[b][d]=2"}}, `{"a":{"b":{"c":"1","d":"2"}}}`},
		{"array", []apiField{{raw: "a[]=1"}, {raw: "a[]=2", typed: true}}, `{"a":["1",2]}`},
		{"empty array", []apiField{{raw: "a[]", typed: true}}, `{"a":[]}`},
		{"array of objects", []apiField{{raw: "a[][n]=1"}, {raw: "a[][m]=2"}, {raw: "a[][n]=3"}},
			`{"a":[{"n":"1","m":"2"},{"n":"3"}]}`},
		{"array in array object", []apiField{{raw: "a[][t][]=1"}, {raw: "a[][t][]=2"}}, `{"a":[{"t":["1","2"]}]}`},
		{"later wins", []apiField{{raw: "a=1"}, {raw: "a=2"}}, `{"a":"2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAPIFields(tt.fields, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			assertSameJSON(t, string(b), tt.want)
		})
	}
}

func TestAPIParseFieldsErrors(t *testing.T) {
	for _, raw := range []string{"noequals", "=v", "a[b=1", "a]=1", "a[][]=1", "[x]=1"} {
		if _, err := parseAPIFields([]apiField{{raw: raw}}, nil); err == nil {
			t.Errorf("%q: got nil error, want one", raw)
		}
	}
	conflicts := [][]apiField{
		{{raw: "a=1"}, {raw: "a[b]=2"}},
		{{raw: "a=1"}, {raw: "a[]=2"}},
		{{raw: "a[b]=1"}, {raw: "a[b][c]=2"}},
	}
	for _, c := range conflicts {
		if _, err := parseAPIFields(c, nil); err == nil {
			t.Errorf("%v: got nil error, want a type conflict", c)
		}
	}
	if _, err := parseAPIFields([]apiField{{raw: "a=@/nonexistent/file", typed: true}}, nil); err == nil {
		t.Error("missing @file: got nil error")
	}
}

func TestAPIAddQuery(t *testing.T) {
	u, _ := url.Parse("https://a/x?keep=1")
	addQuery(u, map[string]any{"s": "v w", "n": json.Number("2"), "b": true, "z": nil,
		"arr": []any{"1", "2"}, "o": map[string]any{"k": "v"}})
	want := url.Values{"keep": {"1"}, "s": {"v w"}, "n": {"2"}, "b": {"true"}, "z": {""},
		"arr[]": {"1", "2"}, "o[k]": {"v"}}
	if got := u.Query(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAPINextCursor(t *testing.T) {
	tests := []struct {
		name, body, want string
		ok               bool
	}{
		{"top", `{"data":{"items":{"pageInfo":{"hasNextPage":true,"endCursor":"c2"}}}}`, "c2", true},
		{"last page", `{"data":{"items":{"pageInfo":{"hasNextPage":false,"endCursor":"c5"}}}}`, "", false},
		{"deep, fields reversed", `{"data":{"a":[1,{"b":{"pageInfo":{"endCursor":"x","hasNextPage":true}}}]}}`, "x", true},
		{"first in document order", `{"data":{"a":{"pageInfo":{"hasNextPage":true,"endCursor":"one"}},"b":{"pageInfo":{"hasNextPage":true,"endCursor":"two"}}}}`, "one", true},
		{"incomplete pageInfo skipped", `{"data":{"a":{"pageInfo":{"hasNextPage":true}},"b":{"pageInfo":{"hasNextPage":true,"endCursor":"b"}}}}`, "b", true},
		{"pageInfo as a value is not a key", `{"data":{"k":"pageInfo","pageInfo":{"hasNextPage":true,"endCursor":"v"}}}`, "v", true},
		{"null cursor", `{"data":{"pageInfo":{"hasNextPage":true,"endCursor":null}}}`, "", false},
		{"outside data", `{"extensions":{"pageInfo":{"hasNextPage":true,"endCursor":"e"}},"data":{}}`, "", false},
		{"not JSON", `nope`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := nextCursor([]byte(tt.body))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAPIEndCursorVar(t *testing.T) {
	for q, want := range map[string]bool{
		`query($endCursor: String) { x }`:        true,
		`query($first:Int,$endCursor:String!){}`: true,
		`query($endCursor: Int) { x }`:           false,
		`query { x(after: "endCursor") }`:        false,
		`query($endCursor: StringX) { x }`:       false,
	} {
		if got := endCursorVar.MatchString(q); got != want {
			t.Errorf("%q: got %v, want %v", q, got, want)
		}
	}
}

func TestAPIGraphQLErrors(t *testing.T) {
	if got := graphQLErrors([]byte(`{"data":{}}`)); len(got) != 0 {
		t.Errorf("no errors: got %q", got)
	}
	got := graphQLErrors([]byte(`{"errors":[{"message":"a"},{"message":"b"}]}`))
	if strings.Join(got, ";") != "a;b" {
		t.Errorf("got %q, want [a b]", got)
	}
	if got := graphQLErrors([]byte(`{"errors":[{}]}`)); len(got) != 1 {
		t.Errorf("error without message: got %q, want one entry", got)
	}
}
