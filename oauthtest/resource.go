package oauthtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
)

// ItemCount is the number of items behind /v2/items (paged with RFC 8288
// Link headers) and the GraphQL items connection.
const ItemCount = 25

type tokenKey struct{}

// requireToken guards the protected resource with bearer tokens (RFC 6750
// §2.1). A missing, unknown, revoked or expired token gets 401 with
// WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 §3.1).
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, reason := s.authenticate(r)
		if reason != "" {
			s.counters.add(func(c *Counters) { c.Resource401++ })
			// RFC 9728 §5.1: where a client finds who issues tokens here.
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latch-dev", error="invalid_token", error_description=%q, resource_metadata=%q`, reason, s.URL+resourcePath))
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": reason})
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), tokenKey{}, at)))
		if sw.status/100 == 2 || sw.status == 0 {
			s.counters.add(func(c *Counters) { c.Resource200++ })
		}
	})
}

func (s *Server) authenticate(r *http.Request) (accessToken, string) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return accessToken{}, "missing bearer token"
	}
	plain, err := s.provider.Crypto().Decrypt(strings.TrimSpace(tok))
	if err != nil {
		return accessToken{}, "unknown access token"
	}
	id, subject, ok := strings.Cut(plain, ":")
	if !ok {
		return accessToken{}, "unknown access token"
	}
	at, state := s.store.checkAccess(id, subject)
	switch state {
	case tokenExpired:
		return accessToken{}, "the access token expired"
	case tokenRevoked:
		return accessToken{}, "the access token was revoked"
	case tokenUnknown:
		return accessToken{}, "unknown access token"
	}
	return at, ""
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// User is the answer of GET /v2/user and the GraphQL viewer, for a valid
// bearer token (RFC 6750 §2.1).
type User struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	ID    int    `json:"id"`
}

// Item is one element of /v2/items (RFC 8288 paging) and the GraphQL items connection.
type Item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func itemAt(i int) Item { return Item{ID: i + 1, Name: fmt.Sprintf("item-%02d", i+1)} }

func (s *Server) restAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/user", func(w http.ResponseWriter, r *http.Request) {
		at := r.Context().Value(tokenKey{}).(accessToken)
		writeJSON(w, http.StatusOK, User{Login: at.subject, Name: displayName(at.subject), ID: 1})
	})
	// Step-up (RFC 6750 §3.1): /v2/admin needs the admin scope, which a
	// login never gets here; /v2/mfa needs an authentication this server
	// never performs (RFC 9470 §3). Both accept the token itself.
	mux.HandleFunc("GET /v2/admin", func(w http.ResponseWriter, r *http.Request) {
		at := r.Context().Value(tokenKey{}).(accessToken)
		if !slices.Contains(at.scopes, "admin") {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin", error_description="The request requires higher privileges than provided by the access token."`)
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"admin": at.subject})
	})
	mux.HandleFunc("GET /v2/mfa", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", max_age="300"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "insufficient_user_authentication"})
	})
	mux.HandleFunc("/v2/echo", s.echo)
	mux.HandleFunc("GET /v2/items", s.items)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
	})
	return mux
}

// echo answers with what it was sent, so replays can be checked. Multiple
// header or query values are joined with ", ".
func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		return
	}
	headers := map[string]string{}
	for k, v := range r.Header {
		if k == "Authorization" {
			continue
		}
		headers[k] = strings.Join(v, ", ")
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ", ")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"method":  r.Method,
		"path":    r.URL.Path,
		"headers": headers,
		"query":   query,
		"body":    string(body),
	})
}

// items serves a page of items with RFC 8288 Link headers (rel first, prev,
// next, last). per_page defaults to 10, at most 100; page starts at 1.
func (s *Server) items(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perPage, err := intParam(q.Get("per_page"), 10)
	if err != nil || perPage < 1 || perPage > 100 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "per_page must be 1..100"})
		return
	}
	page, err := intParam(q.Get("page"), 1)
	if err != nil || page < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "page must be 1 or more"})
		return
	}
	last := (ItemCount + perPage - 1) / perPage
	out := []Item{}
	for i := (page - 1) * perPage; i < page*perPage && i < ItemCount; i++ {
		out = append(out, itemAt(i))
	}
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s/v2/items?per_page=%d&page=%d>; rel="%s"`, s.URL, perPage, p, rel)
	}
	links := []string{link(1, "first")}
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(last, "last"))
	w.Header().Set("Link", strings.Join(links, ", "))
	w.Header().Set("X-Total-Count", strconv.Itoa(ItemCount))
	writeJSON(w, http.StatusOK, out)
}

func intParam(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// --- GraphQL -----------------------------------------------------------------

const schemaText = `
schema { query: Query }
type Query {
  viewer: User!
  items(first: Int, after: String): ItemConnection!
}
type User { id: ID! login: String! name: String! }
type Item { id: ID! name: String! }
type ItemConnection {
  nodes: [Item!]!
  pageInfo: PageInfo!
  totalCount: Int!
}
type PageInfo { hasNextPage: Boolean! endCursor: String }
`

func newSchema(login string) (*graphql.Schema, error) {
	s, err := graphql.ParseSchema(schemaText, &gqlQuery{login: login}, graphql.MaxDepth(10), graphql.MaxQueryLength(8<<10))
	if err != nil {
		return nil, fmt.Errorf("parse graphql schema: %w", err)
	}
	return s, nil
}

type gqlQuery struct{ login string }

type gqlUser struct{ u User }

func (u gqlUser) ID() graphql.ID { return graphql.ID(strconv.Itoa(u.u.ID)) }
func (u gqlUser) Login() string  { return u.u.Login }
func (u gqlUser) Name() string   { return u.u.Name }

func (q *gqlQuery) Viewer() gqlUser {
	return gqlUser{User{Login: q.login, Name: displayName(q.login), ID: 1}}
}

type gqlItem struct{ it Item }

func (i gqlItem) ID() graphql.ID { return graphql.ID(strconv.Itoa(i.it.ID)) }
func (i gqlItem) Name() string   { return i.it.Name }

type gqlPageInfo struct {
	next   bool
	cursor *string
}

func (p gqlPageInfo) HasNextPage() bool  { return p.next }
func (p gqlPageInfo) EndCursor() *string { return p.cursor }

type gqlConnection struct {
	nodes []gqlItem
	info  gqlPageInfo
}

func (c gqlConnection) Nodes() []gqlItem      { return c.nodes }
func (c gqlConnection) PageInfo() gqlPageInfo { return c.info }
func (c gqlConnection) TotalCount() int32     { return ItemCount }

func cursorFor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("item:" + strconv.Itoa(i)))
}

func parseCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, errors.New("invalid cursor")
	}
	n, ok := strings.CutPrefix(string(b), "item:")
	if !ok {
		return 0, errors.New("invalid cursor")
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || i >= ItemCount {
		return 0, errors.New("invalid cursor")
	}
	return i, nil
}

// Items resolves the items connection: first defaults to 10, at most 100;
// after is an opaque endCursor.
func (q *gqlQuery) Items(args struct {
	First *int32
	After *string
}) (gqlConnection, error) {
	first := 10
	if args.First != nil {
		first = int(*args.First)
	}
	if first < 0 || first > 100 {
		return gqlConnection{}, errors.New("first must be 0..100")
	}
	start := 0
	if args.After != nil {
		i, err := parseCursor(*args.After)
		if err != nil {
			return gqlConnection{}, err
		}
		start = i + 1
	}
	var conn gqlConnection
	end := min(start+first, ItemCount)
	for i := start; i < end; i++ {
		conn.nodes = append(conn.nodes, gqlItem{itemAt(i)})
	}
	if conn.nodes == nil {
		conn.nodes = []gqlItem{}
	}
	conn.info.next = end < ItemCount
	if end > start {
		c := cursorFor(end - 1)
		conn.info.cursor = &c
	}
	return conn, nil
}

// graphql serves POST /graphql with a JSON body {query, operationName, variables}.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	var params struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&params); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"message": "decode request: " + err.Error()}}})
		return
	}
	resp := s.schema.Exec(r.Context(), params.Query, params.OperationName, params.Variables)
	writeJSON(w, http.StatusOK, resp)
}
