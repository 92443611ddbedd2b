package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
)

// endCursorVar matches a query's declaration of the $endCursor variable,
// which --paginate needs to pass the next page's cursor.
var endCursorVar = regexp.MustCompile(`\$endCursor\s*:\s*String\b`)

// nextCursor finds the first `pageInfo { hasNextPage endCursor }` object,
// in document order, anywhere in a GraphQL response's data, and returns
// its endCursor when hasNextPage is true.
func nextCursor(body []byte) (string, bool) {
	var resp struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &resp) != nil || len(resp.Data) == 0 {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(resp.Data))
	dec.UseNumber()
	pi, found := findPageInfo(dec)
	if !found || !pi.HasNextPage || pi.EndCursor == nil {
		return "", false
	}
	return *pi.EndCursor, true
}

type pageInfo struct {
	HasNextPage bool    `json:"hasNextPage"`
	EndCursor   *string `json:"endCursor"`
}

// findPageInfo walks the token stream; it decodes the value of the first
// "pageInfo" key that holds both fields.
func findPageInfo(dec *json.Decoder) (pageInfo, bool) {
	type frame struct {
		object bool
		n      int
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return pageInfo{}, false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].n%2 == 0
		if len(stack) > 0 {
			stack[len(stack)-1].n++
		}
		if isKey && tok == "pageInfo" {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return pageInfo{}, false
			}
			stack[len(stack)-1].n++ // the value was consumed
			var fields map[string]json.RawMessage
			var pi pageInfo
			if json.Unmarshal(raw, &fields) == nil && fields["hasNextPage"] != nil &&
				fields["endCursor"] != nil && json.Unmarshal(raw, &pi) == nil {
				return pi, true
			}
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{'})
		}
	}
}

// graphQLErrors returns the messages of a GraphQL response's top-level
// "errors" list (GraphQL spec §7.1.2), if any.
func graphQLErrors(body []byte) []string {
	var resp struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return nil
	}
	msgs := make([]string, 0, len(resp.Errors))
	for _, e := range resp.Errors {
		msgs = append(msgs, e.Message)
	}
	if len(resp.Errors) > 0 && len(msgs) == 0 {
		msgs = append(msgs, "unknown error")
	}
	return msgs
}

// graphQLBody builds the request body: query and operationName at the top
// level, every other field in variables.
func graphQLBody(params map[string]any) (io.Reader, error) {
	body := map[string]any{}
	vars := map[string]any{}
	for k, v := range params {
		switch k {
		case "query", "operationName":
			body[k] = v
		default:
			vars[k] = v
		}
	}
	if q, ok := body["query"].(string); !ok || strings.TrimSpace(q) == "" {
		return nil, errors.New("graphql: a query is required (-f query='...' or -F query=@file)")
	}
	if len(vars) > 0 {
		body["variables"] = vars
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}
