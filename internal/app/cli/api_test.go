package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/stepup"
)

// fakeAPIEnv stands in for App: the client and URLs are the test's.
type fakeAPIEnv struct {
	client     *http.Client
	api, gql   string
	tty, color bool
	static     bool
	clientErr  error
	// stepUpOK lets --step-up log in; stepUp runs when it does.
	stepUpOK bool
	stepUps  int
	stepUp   func(*stepup.Challenge)
}

func (e *fakeAPIEnv) StepUpWanted(flag bool) (bool, string) {
	if !flag {
		return false, ""
	}
	if !e.stepUpOK {
		return false, "no terminal"
	}
	return true, ""
}

func (e *fakeAPIEnv) StepUp(_ context.Context, c *stepup.Challenge) error {
	e.stepUps++
	if e.stepUp != nil {
		e.stepUp(c)
	}
	return nil
}

func (e *fakeAPIEnv) HTTPClient(context.Context) (*http.Client, error) {
	return e.client, e.clientErr
}
func (e *fakeAPIEnv) APIURL(context.Context) (string, error)     { return e.api, nil }
func (e *fakeAPIEnv) GraphQLURL(context.Context) (string, error) { return e.gql, nil }
func (e *fakeAPIEnv) StdoutIsTTY() bool                          { return e.tty }
func (e *fakeAPIEnv) ColorEnabled() bool                         { return e.color }
func (e *fakeAPIEnv) StaticToken() bool                          { return e.static }
func (e *fakeAPIEnv) StepUpCommand(_ context.Context, c *stepup.Challenge) string {
	return "latch auth login --scopes " + strings.Join(c.Union([]string{"openid"}), ",")
}

// apiServer is a fake API: /v2/user, /v2/echo, /v2/items, /v2/missing,
// /v2/text and a small hand-written /graphql.
type apiServer struct {
	*httptest.Server
	hits     atomic.Int64
	mu       sync.Mutex
	requests []*http.Request // what the server saw, bodies in echo
}

const userJSON = `{"login":"alice","id":7}`

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/user", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Server", "fake")
		io.WriteString(w, userJSON)
	})
	mux.HandleFunc("/v2/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Del("Authorization")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "headers": h, "body": string(body),
			"query": r.URL.Query(), "content_length": r.ContentLength,
		})
	})
	mux.HandleFunc("/v2/items", func(w http.ResponseWriter, r *http.Request) {
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if per <= 0 {
			per = 2
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page <= 0 {
			page = 1
		}
		const total = 5
		var items []map[string]any
		for i := (page-1)*per + 1; i <= page*per && i <= total; i++ {
			items = append(items, map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i)})
		}
		if page*per < total {
			// relative reference, resolved against the request (RFC 8288 §3.2)
			w.Header().Add("Link", fmt.Sprintf(`</v2/items?per_page=%d&page=%d>; rel="next", </v2/items?page=1>; rel="first"`, per, page+1))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(items)
	})
	mux.HandleFunc("/v2/missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"no such thing"}`)
	})
	mux.HandleFunc("/v2/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "plain {not json}")
	})
	mux.HandleFunc("/graphql", s.graphql)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// graphql answers viewer, a paginated items connection, and an error.
func (s *apiServer) graphql(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errors":[{"message":"bad request"}]}`)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	switch {
	case strings.Contains(req.Query, "boom"):
		io.WriteString(w, `{"data":null,"errors":[{"message":"boom happened"}]}`)
	case strings.Contains(req.Query, "items"):
		first := 2
		if f, ok := req.Variables["first"].(float64); ok {
			first = int(f)
		}
		start := 0
		if c, ok := req.Variables["endCursor"].(string); ok {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
		}
		const total = 5
		var nodes []map[string]any
		end := min(start+first, total)
		for i := start + 1; i <= end; i++ {
			nodes = append(nodes, map[string]any{"id": i})
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
			"viewer": map[string]any{"login": "alice"},
			"items": map[string]any{
				"nodes":    nodes,
				"pageInfo": map[string]any{"hasNextPage": end < total, "endCursor": "c" + strconv.Itoa(end)},
			},
		}})
	case strings.Contains(req.Query, "viewer"):
		io.WriteString(w, `{"data":{"viewer":{"login":"alice"}}}`)
	default:
		io.WriteString(w, `{"errors":[{"message":"unknown query"}]}`)
	}
}

type apiResult struct {
	stdout, stderr string
	err            error
}

func (r apiResult) code() int { return exitCode(r.err) }

func runAPI(t *testing.T, env *fakeAPIEnv, stdin string, args ...string) apiResult {
	t.Helper()
	return runAPIContext(t, context.Background(), env, stdin, args...)
}

func runAPIContext(t *testing.T, ctx context.Context, env *fakeAPIEnv, stdin string, args ...string) apiResult {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newAPICommand(env, func() apiStreams {
		return apiStreams{in: strings.NewReader(stdin), out: &out, errOut: &errOut}
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(ctx)
	return apiResult{out.String(), errOut.String(), err}
}

func newEnv(s *apiServer) *fakeAPIEnv {
	return &fakeAPIEnv{client: s.Client(), api: s.URL, gql: s.URL + "/graphql"}
}

// echo decodes what /v2/echo saw.
type echoed struct {
	Method        string              `json:"method"`
	Headers       map[string][]string `json:"headers"`
	Body          string              `json:"body"`
	Query         map[string][]string `json:"query"`
	ContentLength int64               `json:"content_length"`
}

func decodeEcho(t *testing.T, r apiResult) echoed {
	t.Helper()
	if r.err != nil {
		t.Fatalf("api: %v (stderr %q)", r.err, r.stderr)
	}
	var e echoed
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
		t.Fatalf("echo output is not JSON: %v: %q", err, r.stdout)
	}
	return e
}

func TestAPIGetPrintsBodyUnchangedWhenPiped(t *testing.T) {
	s := newAPIServer(t)
	for _, path := range []string{"/v2/user", "v2/user", s.URL + "/v2/user"} {
		t.Run(path, func(t *testing.T) {
			r := runAPI(t, newEnv(s), "", path)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.stdout != userJSON {
				t.Errorf("got %q, want %q", r.stdout, userJSON)
			}
		})
	}
}

func TestAPIBaseWithPathAndTrailingSlash(t *testing.T) {
	s := newAPIServer(t)
	env := newEnv(s)
	env.api = s.URL + "/v2/"
	r := runAPI(t, env, "", "/user")
	if r.stdout != userJSON {
		t.Errorf("got %q, want %q (err %v)", r.stdout, userJSON, r.err)
	}
}

func TestAPIMethodHeaderAndFields(t *testing.T) {
	s := newAPIServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "note.txt")
	os.WriteFile(file, []byte("from a file"), 0o600)

	e := decodeEcho(t, runAPI(t, newEnv(s), "from stdin", "v2/echo",
		"-X", "put", "-H", "X-Trace: abc 1", "-H", "X-Multi: a", "-H", "X-Multi: b",
		"-f", "name=latch", "-f", "raw=true", "-f", "at=@literal",
		"-F", "count=3", "-F", "ratio=1.5", "-F", "ok=true", "-F", "no=false", "-F", "nothing=null",
		"-F", "big=12345678901234567890", "-F", "word=hello",
		"-F", "note=@"+file, "-F", "in=@-",
		"-f", "user[name]=x", "-F", "user[admin]=true", "-f", "tags[]=a", "-f", "tags[]=b", "-F", "empty[]",
		"-f", "html=<a&b>"))
	if e.Method != "PUT" {
		t.Errorf("method: got %q, want PUT", e.Method)
	}
	if got := e.Headers["X-Trace"]; !reflect.DeepEqual(got, []string{"abc 1"}) {
		t.Errorf("X-Trace: got %q, want [abc 1]", got)
	}
	if got := e.Headers["X-Multi"]; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("X-Multi: got %q, want [a b]", got)
	}
	if got := e.Headers["Content-Type"]; len(got) != 1 || !strings.HasPrefix(got[0], "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	want := `{"at":"@literal","big":12345678901234567890,"count":3,"empty":[],"html":"<a&b>","in":"from stdin",` +
		`"no":false,"note":"from a file","nothing":null,"ok":true,"ratio":1.5,"raw":"true",` +
		`"name":"latch","tags":["a","b"],"user":{"admin":true,"name":"x"},"word":"hello"}`
	assertSameJSON(t, e.Body, want)
}

func assertSameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	json.Unmarshal([]byte(want), &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestAPIDefaultMethod(t *testing.T) {
	s := newAPIServer(t)
	tests := []struct {
		name       string
		args       []string
		wantMethod string
		wantQuery  map[string][]string
		wantBody   string
	}{
		{"no fields is GET", nil, "GET", map[string][]string{}, ""},
		{"fields make POST", []string{"-f", "a=1"}, "POST", map[string][]string{}, `{"a":"1"}` + "\n"},
		{"GET fields go in the query", []string{"-X", "GET", "-f", "a=1", "-F", "n=2", "-f", "t[]=x", "-f", "o[k]=v"}, "GET",
			map[string][]string{"a": {"1"}, "n": {"2"}, "t[]": {"x"}, "o[k]": {"v"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeEcho(t, runAPI(t, newEnv(s), "", append([]string{"v2/echo"}, tt.args...)...))
			if e.Method != tt.wantMethod {
				t.Errorf("method: got %q, want %q", e.Method, tt.wantMethod)
			}
			if !reflect.DeepEqual(e.Query, tt.wantQuery) {
				t.Errorf("query: got %v, want %v", e.Query, tt.wantQuery)
			}
			if e.Body != tt.wantBody {
				t.Errorf("body: got %q, want %q", e.Body, tt.wantBody)
			}
		})
	}
	e := decodeEcho(t, runAPI(t, newEnv(s), "", "v2/echo?keep=1", "-X", "GET", "-f", "a=1"))
	if want := map[string][]string{"keep": {"1"}, "a": {"1"}}; !reflect.DeepEqual(e.Query, want) {
		t.Errorf("query: got %v, want %v", e.Query, want)
	}
}

// rotatingSource hands out "stale" until refreshed, then "fresh".
type rotatingSource struct {
	mu        sync.Mutex
	tok       string
	refreshes int
}

func (s *rotatingSource) Token(context.Context) (*latch.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &latch.Token{AccessToken: s.tok, TokenType: "Bearer"}, nil
}

func (s *rotatingSource) Refresh(ctx context.Context, stale *latch.Token) (*latch.Token, error) {
	s.mu.Lock()
	s.refreshes++
	s.tok = "fresh"
	s.mu.Unlock()
	return s.Token(ctx)
}

// rejectStale answers 401 to the token "stale", after reading the body,
// the way a server that expired the token mid-upload does.
func rejectStale(next http.Handler, bodies *[]int) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer stale" {
			n, _ := io.Copy(io.Discard, r.Body)
			mu.Lock()
			*bodies = append(*bodies, int(n))
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestAPIInputFileReplaysAfter401(t *testing.T) {
	s := newAPIServer(t)
	var staleBodies []int
	s.Config.Handler = rejectStale(s.Config.Handler, &staleBodies)
	src := &rotatingSource{tok: "stale"}
	env := newEnv(s)
	env.client = &http.Client{Transport: &latch.Transport{Source: src, Base: s.Client().Transport}}

	// Larger than the transport's replay buffer: only GetBody can replay it.
	big := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16+256)
	file := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(file, big, 0o600); err != nil {
		t.Fatal(err)
	}
	e := decodeEcho(t, runAPI(t, env, "", "v2/echo", "--input", file, "-H", "Content-Type: application/octet-stream"))
	if e.Method != "POST" {
		t.Errorf("method: got %q, want POST", e.Method)
	}
	if e.Body != string(big) {
		t.Errorf("replayed body: got %d bytes, want the file's %d", len(e.Body), len(big))
	}
	if e.ContentLength != int64(len(big)) {
		t.Errorf("Content-Length: got %d, want %d (a file streams with its size)", e.ContentLength, len(big))
	}
	if src.refreshes != 1 || len(staleBodies) != 1 || staleBodies[0] != len(big) {
		t.Errorf("got %d refreshes and stale bodies %v, want 1 refresh after one full body of %d", src.refreshes, staleBodies, len(big))
	}
}

func TestAPIInputStdin(t *testing.T) {
	s := newAPIServer(t)
	e := decodeEcho(t, runAPI(t, newEnv(s), `{"from":"stdin"}`, "v2/echo", "--input", "-", "-X", "PATCH", "-f", "q=1"))
	if e.Method != "PATCH" || e.Body != `{"from":"stdin"}` {
		t.Errorf("got %s %q, want PATCH with the stdin body", e.Method, e.Body)
	}
	if want := map[string][]string{"q": {"1"}}; !reflect.DeepEqual(e.Query, want) {
		t.Errorf("with --input, fields go in the query: got %v, want %v", e.Query, want)
	}
}

func TestAPIInputStdinIsNotReplayable(t *testing.T) {
	s := newAPIServer(t)
	var staleBodies []int
	s.Config.Handler = rejectStale(s.Config.Handler, &staleBodies)
	env := newEnv(s)
	env.client = &http.Client{Transport: &latch.Transport{Source: &rotatingSource{tok: "stale"}, Base: s.Client().Transport, MaxReplay: -1}}
	r := runAPI(t, env, "streamed", "v2/echo", "--input", "-")
	if !errors.Is(r.err, latch.ErrBodyNotReplayable) {
		t.Fatalf("got %v, want ErrBodyNotReplayable", r.err)
	}
}

func TestAPIInputMissingFile(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "v2/echo", "--input", filepath.Join(t.TempDir(), "nope"))
	if r.code() != ExitUsage || s.hits.Load() != 0 {
		t.Errorf("got exit %d after %d requests, want %d and none", r.code(), s.hits.Load(), ExitUsage)
	}
}

func TestOpenInputRegularFileIsReplayable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(file, []byte(`{"a":1}`), 0o600)
	body, size, getBody, err := openInput(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.(io.Closer).Close()
	if size != 7 || getBody == nil {
		t.Fatalf("got size %d, GetBody %v; want 7 and a GetBody", size, getBody != nil)
	}
	first, _ := io.ReadAll(body)
	rc, err := getBody()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := io.ReadAll(rc)
	rc.Close()
	if string(first) != `{"a":1}` || string(again) != string(first) {
		t.Errorf("got %q then %q, want the file twice", first, again)
	}
	if _, _, gb, _ := openInput("-", strings.NewReader("x")); gb != nil {
		t.Error("stdin got a GetBody; it cannot be replayed")
	}
}

func TestAPIPaginate(t *testing.T) {
	s := newAPIServer(t)
	page := func(ids ...int) string {
		var items []map[string]any
		for _, i := range ids {
			items = append(items, map[string]any{"id": i, "name": fmt.Sprintf("item-%d", i)})
		}
		b, _ := json.Marshal(items)
		return string(b)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one page without --paginate", nil, page(1, 2) + "\n"},
		{"every page", []string{"--paginate"}, page(1, 2) + "\n" + page(3, 4) + "\n" + page(5) + "\n"},
		{"slurp", []string{"--paginate", "--slurp"}, "[" + page(1, 2) + "," + page(3, 4) + "," + page(5) + "]\n"},
		{"jq per page", []string{"--paginate", "--jq", ".[].name"}, "item-1\nitem-2\nitem-3\nitem-4\nitem-5\n"},
		{"jq per page, JSON results", []string{"--paginate", "--jq", "length"}, "2\n2\n1\n"},
		{"jq on the slurped array", []string{"--paginate", "--slurp", "--jq", "map(length) | add"}, "5\n"},
		{"jq objects compact when piped", []string{"--jq", ".[0]"}, `{"id":1,"name":"item-1"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAPI(t, newEnv(s), "", append([]string{"v2/items?per_page=2"}, tt.args...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.stdout != tt.want {
				t.Errorf("got %q, want %q", r.stdout, tt.want)
			}
		})
	}
}

func TestAPIPaginateSeparatesPagesWithoutNewline(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Link", `<`+r.URL.Path+`?page=2>; rel="next"`)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[1]`) // no trailing newline
	}))
	defer srv.Close()
	r := runAPI(t, &fakeAPIEnv{client: srv.Client(), api: srv.URL}, "", "x", "--paginate")
	if r.stdout != "[1]\n[1]" {
		t.Errorf("got %q, want %q", r.stdout, "[1]\n[1]")
	}
}

func TestAPIPaginateStopsOnRepeatedLink(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `</loop>; rel="next"`)
		io.WriteString(w, "[]")
	}))
	defer srv.Close()
	r := runAPI(t, &fakeAPIEnv{client: srv.Client(), api: srv.URL}, "", "loop", "--paginate")
	if r.err == nil || !strings.Contains(r.err.Error(), "repeated") {
		t.Errorf("got %v, want a pagination loop error", r.err)
	}
}

func TestAPIGraphQL(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "graphql", "-f", "query=query { viewer { login } }")
	if r.err != nil || r.stdout != `{"data":{"viewer":{"login":"alice"}}}` {
		t.Fatalf("got %q, %v", r.stdout, r.err)
	}
	r = runAPI(t, newEnv(s), "", "graphql", "-f", "query=query { viewer { login } }", "--jq", ".data.viewer.login")
	if r.stdout != "alice\n" {
		t.Errorf("jq: got %q, want %q", r.stdout, "alice\n")
	}
}

func TestAPIGraphQLVariablesAndBody(t *testing.T) {
	s := newAPIServer(t)
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		io.WriteString(w, `{"data":{}}`)
	}))
	defer srv.Close()
	env := newEnv(s)
	env.gql = srv.URL
	env.client = srv.Client()
	r := runAPI(t, env, "", "graphql", "-f", "query=query Q($first: Int) { x }", "-f", "operationName=Q", "-F", "first=2", "-f", "name=n")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := map[string]any{"query": "query Q($first: Int) { x }", "operationName": "Q",
		"variables": map[string]any{"first": float64(2), "name": "n"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("server saw %v, want %v", got, want)
	}
}

const itemsQuery = `query($first: Int, $endCursor: String) { items(first: $first, after: $endCursor) { nodes { id } pageInfo { hasNextPage endCursor } } }`

func TestAPIGraphQLPaginate(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "graphql", "--paginate", "-F", "first=2", "-f", "query="+itemsQuery, "--jq", "[.data.items.nodes[].id]")
	if want := "[1,2]\n[3,4]\n[5]\n"; r.err != nil || r.stdout != want {
		t.Fatalf("got %q, %v; want %q", r.stdout, r.err, want)
	}
	r = runAPI(t, newEnv(s), "", "graphql", "--paginate", "--slurp", "-F", "first=2", "-f", "query="+itemsQuery,
		"--jq", "[.[].data.items.nodes[].id]")
	if want := "[1,2,3,4,5]\n"; r.err != nil || r.stdout != want {
		t.Fatalf("slurp: got %q, %v; want %q", r.stdout, r.err, want)
	}
}

func TestAPIGraphQLPaginateNeedsEndCursor(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "graphql", "--paginate", "-f", "query=query { items { pageInfo { hasNextPage endCursor } } }")
	if r.code() != ExitUsage || !strings.Contains(r.err.Error(), "$endCursor") || s.hits.Load() != 0 {
		t.Errorf("got exit %d, %v, %d requests; want %d naming $endCursor and no request", r.code(), r.err, s.hits.Load(), ExitUsage)
	}
}

func TestAPIGraphQLErrorsExit1(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "graphql", "-f", "query=query { boom }")
	if r.code() != ExitAPI {
		t.Errorf("exit: got %d, want %d", r.code(), ExitAPI)
	}
	if r.stdout != `{"data":null,"errors":[{"message":"boom happened"}]}` {
		t.Errorf("stdout: got %q, want the body", r.stdout)
	}
	if r.stderr != "GraphQL: boom happened\n" {
		t.Errorf("stderr: got %q", r.stderr)
	}
}

func TestAPIHTTPErrorPrintsBodyAndExits1(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "v2/missing?secret=x", "--jq", ".ignored")
	if r.code() != ExitAPI {
		t.Errorf("exit: got %d, want %d", r.code(), ExitAPI)
	}
	var ee *ExitError
	if !errors.As(r.err, &ee) || !ee.Silent {
		t.Errorf("got %#v, want a silent *ExitError", r.err)
	}
	if r.stdout != `{"message":"no such thing"}` {
		t.Errorf("stdout: got %q, want the error body", r.stdout)
	}
	if want := "HTTP 404: Not Found (" + s.URL + "/v2/missing)\n"; r.stderr != want {
		t.Errorf("stderr: got %q, want %q", r.stderr, want)
	}
}

func TestAPIInclude(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "v2/user", "-i")
	head, body, ok := strings.Cut(r.stdout, "\n\n")
	if !ok || body != userJSON {
		t.Fatalf("got %q, want headers, a blank line and the body", r.stdout)
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "HTTP/1.1 200 OK" {
		t.Errorf("status line: got %q", lines[0])
	}
	if !strings.Contains(head, "\nContent-Type: application/json\n") || !strings.Contains(head, "\nX-Server: fake") {
		t.Errorf("headers: got %q", head)
	}
}

func TestAPISilent(t *testing.T) {
	s := newAPIServer(t)
	r := runAPI(t, newEnv(s), "", "v2/user", "--silent")
	if r.err != nil || r.stdout != "" || s.hits.Load() != 1 {
		t.Errorf("got %q, %v after %d requests; want no output after 1", r.stdout, r.err, s.hits.Load())
	}
	r = runAPI(t, newEnv(s), "", "v2/missing", "--silent")
	if r.code() != ExitAPI || r.stdout != "" || !strings.HasPrefix(r.stderr, "HTTP 404") {
		t.Errorf("error: got exit %d, %q, %q; want 1, no body, the HTTP line", r.code(), r.stdout, r.stderr)
	}
	r = runAPI(t, newEnv(s), "", "v2/user", "--silent", "-i")
	if !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK\n") || strings.Contains(r.stdout, "alice") {
		t.Errorf("-i --silent: got %q, want headers only", r.stdout)
	}
}

func TestAPITerminalOutput(t *testing.T) {
	s := newAPIServer(t)
	env := newEnv(s)
	env.tty = true
	r := runAPI(t, env, "", "v2/user")
	if want := "{\n  \"login\": \"alice\",\n  \"id\": 7\n}\n"; r.stdout != want {
		t.Errorf("tty: got %q, want %q", r.stdout, want)
	}
	env.color = true
	r = runAPI(t, env, "", "v2/user")
	if !strings.Contains(r.stdout, "\x1b[1;34m\"login\"\x1b[m") || !strings.Contains(r.stdout, "\x1b[32m\"alice\"\x1b[m") {
		t.Errorf("color: got %q, want coloured key and string", r.stdout)
	}
	r = runAPI(t, env, "", "v2/text")
	if r.stdout != "plain {not json}" {
		t.Errorf("non-JSON on a tty: got %q, want it unchanged", r.stdout)
	}
	r = runAPI(t, env, "", "v2/items", "--jq", ".[0]")
	if !strings.Contains(r.stdout, "\n  \x1b[1;34m\"id\"\x1b[m") {
		t.Errorf("jq on a tty: got %q, want pretty coloured JSON", r.stdout)
	}
}

func TestAPIUsageErrors(t *testing.T) {
	s := newAPIServer(t)
	tests := []struct {
		name string
		args []string
	}{
		{"no path", nil},
		{"two paths", []string{"a", "b"}},
		{"bad header", []string{"v2/user", "-H", "NoColon"}},
		{"bad field", []string{"v2/user", "-f", "novalue"}},
		{"bad nested key", []string{"v2/user", "-f", "a[b=1"}},
		{"slurp without paginate", []string{"v2/user", "--slurp"}},
		{"bad jq", []string{"v2/user", "--jq", ".[["}},
		{"paginate POST", []string{"v2/items", "--paginate", "-f", "a=1"}},
		{"bad method", []string{"v2/user", "-X", "GE T"}},
		{"stdin twice", []string{"v2/echo", "--input", "-", "-F", "a=@-"}},
		{"graphql without query", []string{"graphql", "-f", "x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.hits.Load()
			r := runAPI(t, newEnv(s), "", tt.args...)
			if r.code() != ExitUsage {
				t.Errorf("got exit %d (%v), want %d", r.code(), r.err, ExitUsage)
			}
			if s.hits.Load() != before {
				t.Errorf("a request was sent")
			}
		})
	}
}

func TestAPIAuthErrorsPassThrough(t *testing.T) {
	s := newAPIServer(t)
	env := newEnv(s)
	env.client = &http.Client{Transport: &latch.Transport{Source: failingSource{}, Base: s.Client().Transport}}
	r := runAPI(t, env, "", "v2/user?access_token=sekrit")
	if r.code() != ExitAuth || !errors.Is(r.err, latch.ErrLoginRequired) {
		t.Errorf("got exit %d, %v; want %d and ErrLoginRequired", r.code(), r.err, ExitAuth)
	}
	if strings.Contains(r.err.Error(), "sekrit") {
		t.Errorf("error quotes the query: %v", r.err)
	}
	env = newEnv(s)
	env.clientErr = &latch.LoginRequiredError{}
	if r := runAPI(t, env, "", "v2/user"); r.code() != ExitAuth {
		t.Errorf("HTTPClient error: got exit %d, want %d", r.code(), ExitAuth)
	}
}

type failingSource struct{}

func (failingSource) Token(context.Context) (*latch.Token, error) {
	return nil, &latch.LoginRequiredError{Hint: "run `latch auth login`"}
}

func TestAPIHonoursContext(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	r := runAPIContext(t, ctx, &fakeAPIEnv{client: srv.Client(), api: srv.URL}, "", "slow")
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", r.err)
	}
}

// TestAPIStaticToken401Hint: a final 401 with LATCH_TOKEN says why it is
// not refreshed; with the stored login there is no such line.
func TestAPIStaticToken401Hint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	for _, static := range []bool{true, false} {
		r := runAPI(t, &fakeAPIEnv{client: srv.Client(), api: srv.URL, static: static}, "", "v2/user")
		if r.code() != ExitAPI {
			t.Errorf("static=%v: exit %d, want %d", static, r.code(), ExitAPI)
		}
		if got := strings.Contains(r.stderr, "LATCH_TOKEN was rejected"); got != static {
			t.Errorf("static=%v: stderr %q", static, r.stderr)
		}
	}
}

// TestAPIStepUpWithoutScope: a 403 insufficient_scope that names no
// scope says so and exits 1: there is no login to name.
func TestAPIStepUpWithoutScope(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(403)
	}))
	defer s.Close()
	env := &fakeAPIEnv{client: s.Client(), api: s.URL}
	r := runAPI(t, env, "", "/x")
	if exitCode(r.err) != 1 || !strings.Contains(r.stderr, "a scope it did not name") {
		t.Fatalf("exit %d, stderr %q", exitCode(r.err), r.stderr)
	}
}

// stepUpServer answers /admin with 403 insufficient_scope (scope=admin)
// until granted, and counts the requests and their bodies.
type stepUpServer struct {
	*httptest.Server
	granted  atomic.Bool
	requests atomic.Int32
	bodies   []string
	mu       sync.Mutex
}

func newStepUpServer(t *testing.T) *stepUpServer {
	s := &stepUpServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if !s.granted.Load() {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`)
			w.WriteHeader(403)
			io.WriteString(w, `{"message":"needs admin"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAPIStepUpReplaysOnce: with --step-up, a 403 insufficient_scope on
// the first page is not printed; latch logs in once for it and sends
// the same request, body included, once more.
func TestAPIStepUpReplaysOnce(t *testing.T) {
	s := newStepUpServer(t)
	env := &fakeAPIEnv{client: s.Client(), api: s.URL, stepUpOK: true}
	env.stepUp = func(c *stepup.Challenge) {
		if len(c.Scopes) != 1 || c.Scopes[0] != "admin" {
			t.Errorf("step-up for %v, want admin", c.Scopes)
		}
		s.granted.Store(true)
	}
	r := runAPI(t, env, "", "--step-up", "-X", "POST", "/admin", "-f", "name=x")
	if r.err != nil || strings.TrimSpace(r.stdout) != `{"ok":true}` {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code(), r.stdout, r.stderr)
	}
	if env.stepUps != 1 || s.requests.Load() != 2 || s.bodies[0] != s.bodies[1] || s.bodies[1] == "" {
		t.Errorf("%d step-ups, %d requests, bodies %q; want 1, 2 and the same body twice", env.stepUps, s.requests.Load(), s.bodies)
	}
	if !strings.Contains(r.stderr, "Logging in again for it (--step-up)") || strings.Contains(r.stdout, "needs admin") {
		t.Errorf("stderr %q, stdout %q", r.stderr, r.stdout)
	}
}

// TestAPIStepUpNeverLoops: a refusal after the step-up login is passed
// through with its reason, exit 4, and no second login.
func TestAPIStepUpNeverLoops(t *testing.T) {
	s := newStepUpServer(t)
	env := &fakeAPIEnv{client: s.Client(), api: s.URL, stepUpOK: true}
	r := runAPI(t, env, "", "--step-up", "/admin")
	if r.code() != ExitAuth || env.stepUps != 1 || s.requests.Load() != 2 {
		t.Fatalf("exit %d, %d step-ups, %d requests; want 4, 1, 2", r.code(), env.stepUps, s.requests.Load())
	}
	if !strings.Contains(r.stderr, "refused the request again after the step-up login") || !strings.Contains(r.stdout, "needs admin") {
		t.Errorf("stderr %q, stdout %q", r.stderr, r.stdout)
	}
}

// TestAPIStepUpNotPossible: without a terminal, or with the body on
// stdin, --step-up says why it does not log in, and names the login.
func TestAPIStepUpNotPossible(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ok     bool
		args   []string
		stdin  string
		reason string
	}{
		{"no terminal", false, []string{"--step-up", "/admin"}, "", "no terminal"},
		{"stdin body", true, []string{"--step-up", "-X", "POST", "/admin", "--input", "-"}, `{"a":1}`, "cannot be sent again"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStepUpServer(t)
			env := &fakeAPIEnv{client: s.Client(), api: s.URL, stepUpOK: tt.ok}
			r := runAPI(t, env, tt.stdin, tt.args...)
			if r.code() != ExitAuth || env.stepUps != 0 || !strings.Contains(r.stderr, tt.reason) || !strings.Contains(r.stderr, "latch auth login --scopes openid,admin") {
				t.Errorf("exit %d, %d step-ups, stderr %q", r.code(), env.stepUps, r.stderr)
			}
		})
	}
}
