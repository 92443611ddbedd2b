package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

// apiField is one -f or -F flag value.
type apiField struct {
	raw   string
	typed bool // -F: magic types and @file
}

// parseAPIFields builds the request parameters from -f (raw strings) and
// -F (typed) flags, in gh's syntax: key=value, nested keys a[b]=v, array
// appends a[]=v, and a bare a[] for an empty array. A -F value of
// true/false/null or a JSON number becomes that JSON type, @file reads the
// file and @- reads stdin.
func parseAPIFields(fields []apiField, stdin io.Reader) (map[string]any, error) {
	params := map[string]any{}
	for _, f := range fields {
		key, value, hasValue := strings.Cut(f.raw, "=")
		segs, err := fieldPath(key)
		if err != nil {
			return nil, err
		}
		var v any
		switch {
		case !hasValue && segs[len(segs)-1] == "":
			// a[]: an empty array.
			if err := setField(params, segs[:len(segs)-1], key, nil, true); err != nil {
				return nil, err
			}
			continue
		case !hasValue:
			return nil, fmt.Errorf("field %q: want key=value", f.raw)
		case f.typed:
			if v, err = typedValue(value, stdin); err != nil {
				return nil, fmt.Errorf("field %q: %w", key, err)
			}
		default:
			v = value
		}
		if err := setField(params, segs, key, v, false); err != nil {
			return nil, err
		}
	}
	return params, nil
}

// fieldPath splits "a[b][]" into ["a", "b", ""]; "" means append.
func fieldPath(key string) ([]string, error) {
	name, rest, nested := strings.Cut(key, "[")
	if name == "" || strings.ContainsRune(name, ']') {
		return nil, fmt.Errorf("field %q: malformed key", key)
	}
	segs := []string{name}
	if !nested {
		return segs, nil
	}
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			return nil, fmt.Errorf("field %q: malformed key", key)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("field %q: malformed key", key)
		}
		segs = append(segs, rest[1:end])
		rest = rest[end+1:]
	}
	for i := 1; i < len(segs)-1; i++ {
		if segs[i] == "" && segs[i+1] == "" {
			return nil, fmt.Errorf("field %q: nested arrays are not supported", key)
		}
	}
	return segs, nil
}

// setField stores v at segs in m. With empty set, it stores an empty
// array at segs instead.
func setField(m map[string]any, segs []string, key string, v any, empty bool) error {
	name := segs[0]
	if len(segs) == 1 {
		if empty {
			if _, ok := m[name].([]any); !ok {
				m[name] = []any{}
			}
			return nil
		}
		m[name] = v
		return nil
	}
	if segs[1] == "" { // array
		arr, ok := m[name].([]any)
		if !ok && m[name] != nil {
			return fmt.Errorf("field %q: %s is not an array", key, name)
		}
		if len(segs) == 2 {
			m[name] = append(arr, v)
			return nil
		}
		// a[][b]=v: add to the last object unless it already has b.
		var last map[string]any
		if len(arr) > 0 {
			last, _ = arr[len(arr)-1].(map[string]any)
		}
		if last == nil || hasPath(last, segs[2:]) {
			last = map[string]any{}
			arr = append(arr, last)
		}
		m[name] = arr
		return setField(last, segs[2:], key, v, empty)
	}
	sub, ok := m[name].(map[string]any)
	if !ok {
		if m[name] != nil {
			return fmt.Errorf("field %q: %s is not an object", key, name)
		}
		sub = map[string]any{}
		m[name] = sub
	}
	return setField(sub, segs[1:], key, v, empty)
}

func hasPath(m map[string]any, segs []string) bool {
	v, ok := m[segs[0]]
	switch {
	case len(segs) > 1 && segs[1] == "":
		return false // appending extends the current object
	case !ok || len(segs) == 1:
		return ok
	}
	sub, ok := v.(map[string]any)
	return ok && hasPath(sub, segs[1:])
}

// typedValue converts a -F value.
func typedValue(s string, stdin io.Reader) (any, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := readValueFile(name, stdin)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	if isJSONNumber(s) {
		return json.Number(s), nil
	}
	return s, nil
}

func readValueFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		if stdin == nil {
			return nil, errors.New("read stdin: no stdin")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read file: %w", err)
	}
	return b, nil
}

// isJSONNumber reports whether s is a number in RFC 8259 §6 grammar.
func isJSONNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	if !json.Valid([]byte(s)) {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// addQuery adds params to u's query. Arrays become key[]=v and objects
// key[sub]=v, as Rails and gh encode them.
func addQuery(u *url.URL, params map[string]any) {
	q := u.Query()
	var add func(prefix string, v any)
	add = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(v) {
				add(prefix+"["+k+"]", v[k])
			}
		case []any:
			for _, e := range v {
				add(prefix+"[]", e)
			}
		case nil:
			q.Add(prefix, "")
		case string:
			q.Add(prefix, v)
		default:
			q.Add(prefix, fmt.Sprint(v))
		}
	}
	for _, k := range sortedKeys(params) {
		add(k, params[k])
	}
	u.RawQuery = q.Encode()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
