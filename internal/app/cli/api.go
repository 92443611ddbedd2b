package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/itchyny/gojq"
	"github.com/spf13/cobra"

	"github.com/latchdev/latch/stepup"
)

// apiEnv is what `latch api` needs from App: every request goes through
// HTTPClient, the refresh-aware client (bk #841).
type apiEnv interface {
	HTTPClient(ctx context.Context) (*http.Client, error)
	APIURL(ctx context.Context) (string, error)
	GraphQLURL(ctx context.Context) (string, error)
	StdoutIsTTY() bool
	ColorEnabled() bool
	// StaticToken reports whether requests carry a user-supplied token
	// (LATCH_TOKEN), which latch never refreshes.
	StaticToken() bool
	// StepUpCommand is the login that meets a step-up challenge.
	StepUpCommand(ctx context.Context, c *stepup.Challenge) string
	// StepUpWanted reports whether to log in again for a challenge
	// (--step-up or its setting, on a terminal), or why not.
	StepUpWanted(flag bool) (bool, string)
	// StepUp logs in again for the challenge; the next HTTPClient uses
	// the new credential.
	StepUp(ctx context.Context, c *stepup.Challenge) error
}

// apiStreams are the command's standard streams.
type apiStreams struct {
	in          io.Reader
	out, errOut io.Writer
}

// apiOptions holds the flags of `latch api`.
type apiOptions struct {
	path        string
	method      string
	methodSet   bool
	headers     []string
	rawFields   []string
	typedFields []string
	input       string
	paginate    bool
	slurp       bool
	jq          string
	include     bool
	silent      bool
	stepUp      bool
}

// newAPICmd returns `latch api`, in the manner of `gh api`.
func newAPICmd(a *App) *cobra.Command {
	return newAPICommand(a, func() apiStreams { return apiStreams{a.Stdin, a.Stdout, a.Stderr} })
}

// newAPICommand builds `latch api`; streams is read when the command runs.
func newAPICommand(env apiEnv, streams func() apiStreams) *cobra.Command {
	o := &apiOptions{}
	cmd := &cobra.Command{
		Use:   "api PATH",
		Short: "Make an authenticated request to the REST or GraphQL API",
		Long: `Make an authenticated HTTP request to the API and print the response.

PATH is relative to the REST base URL (--api-url), with or without a leading
slash, or a full URL. The special PATH "graphql" posts to the GraphQL endpoint
(--graphql-url): the "query" field holds the query, "operationName" the
operation, and every other field becomes a variable.

The method is GET, or POST when fields or --input are given; -X changes it.
For GET, fields are sent as query parameters; otherwise as a JSON body.
  -f key=value   a string
  -F key=value   true, false, null and numbers become JSON values; @file reads
                 a file and @- reads stdin
Nested keys: -f 'user[name]=x'; arrays: -f 'tags[]=a' -f 'tags[]=b'; an
empty array: -F 'tags[]'.

--paginate follows Link rel="next" headers (RFC 8288). For GraphQL the query
must declare "$endCursor: String" and select pageInfo { hasNextPage endCursor };
the cursor of the first pageInfo in the response is passed to the next page.
--slurp wraps all pages in one JSON array. --jq filters each page, or the
slurped array, with a jq expression; strings print without quotes.

JSON is pretty-printed and coloured on a terminal and printed unchanged when
piped. On an HTTP error the body is still printed and the exit status is 1.`,
		Example: `  latch api /v2/user
  latch api v2/echo -X PUT -H 'X-Trace: 1' -f name=latch -F count=3
  latch api v2/echo --input payload.json
  latch api v2/items --paginate --slurp --jq 'map(length) | add'
  latch api graphql -f query='query { viewer { login } }'
  latch api graphql --paginate -F first=2 -f query='
    query($first: Int, $endCursor: String) {
      items(first: $first, after: $endCursor) {
        nodes { id }
        pageInfo { hasNextPage endCursor }
      }
    }'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(fmt.Errorf("api: want exactly one PATH argument, got %d", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.path = args[0]
			o.methodSet = cmd.Flags().Changed("method")
			return o.run(cmd.Context(), env, streams())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.method, "method", "X", "GET", "HTTP method")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "add a request header `'Key: value'`")
	f.StringArrayVarP(&o.rawFields, "raw-field", "f", nil, "add a string parameter `key=value`")
	f.StringArrayVarP(&o.typedFields, "field", "F", nil, "add a typed parameter `key=value` (@file, @- for stdin)")
	f.StringVar(&o.input, "input", "", "send the `file` as the request body (- for stdin)")
	f.BoolVar(&o.paginate, "paginate", false, "fetch every page of results")
	f.BoolVar(&o.slurp, "slurp", false, "with --paginate, print all pages as one JSON array")
	f.StringVarP(&o.jq, "jq", "q", "", "filter the JSON response with a jq `expression`")
	f.BoolVarP(&o.include, "include", "i", false, "print the status line and response headers")
	f.BoolVar(&o.silent, "silent", false, "do not print the response body")
	f.BoolVar(&o.stepUp, "step-up", false, "when the API asks for more scopes or a stronger login (RFC 6750 §3.1, RFC 9470), log in again for it and send the request once more (a terminal is needed; env "+EnvStepUp+"=1)")
	return cmd
}

// apiRequest is the request for the first page, before it is sent.
type apiRequest struct {
	method  string
	url     string
	header  http.Header
	params  map[string]any // -f/-F fields; for GraphQL, query and variables
	graphQL bool
}

func (o *apiOptions) run(ctx context.Context, env apiEnv, s apiStreams) error {
	if s.in == nil {
		s.in = strings.NewReader("")
	}
	if o.slurp && !o.paginate {
		return usageError(errors.New("api: --slurp requires --paginate"))
	}
	var code *gojq.Code
	if o.jq != "" {
		q, err := gojq.Parse(o.jq)
		if err == nil {
			code, err = gojq.Compile(q)
		}
		if err != nil {
			return usageError(fmt.Errorf("api: parse --jq: %w", err))
		}
	}
	req, err := o.prepare(ctx, env, s.in)
	if err != nil {
		return err
	}
	client, err := env.HTTPClient(ctx)
	if err != nil {
		return err
	}
	if !req.graphQL && isFullURL(o.path) {
		// The transport sends the token to the API's origins only; a
		// request elsewhere goes without it, and the person is told.
		api, _ := env.APIURL(ctx)
		gql, _ := env.GraphQLURL(ctx)
		if o := origin(req.url); o != origin(api) && o != origin(gql) {
			fmt.Fprintf(s.errOut, "latch: %s is not the API's origin (%s), so the request goes without your token; pass --api-url to make it the API\n",
				o, origin(api))
		}
	}
	newPrinter := func() *apiPrinter {
		return &apiPrinter{
			out: &lastByteWriter{w: s.out}, errOut: s.errOut,
			tty: env.StdoutIsTTY(), color: env.ColorEnabled(),
			include: o.include, silent: o.silent, slurp: o.slurp, jq: code,
			static: env.StaticToken(),
			stepUp: func(c *stepup.Challenge) string { return env.StepUpCommand(ctx, c) },
		}
	}
	p := newPrinter()
	wanted, why := env.StepUpWanted(o.stepUp)
	p.stepUpNow = wanted && o.replayable()
	if wanted && !p.stepUpNow {
		why = "the request body comes from stdin and cannot be sent again"
	}
	p.stepUpWhyNot = why
	err = o.fetch(ctx, client, req, s.in, p)
	var need *stepUpNeeded
	if !errors.As(err, &need) {
		if err != nil {
			return err
		}
		return p.finish(ctx)
	}
	// One step-up per request, never a loop: the replay's printer passes
	// a second challenge on with its reason.
	fmt.Fprintf(s.errOut, "%s\nLogging in again for it (--step-up), then sending the request once more.\n", stepUpMessage(need.c, env.StepUpCommand(ctx, need.c)))
	if err := env.StepUp(ctx, need.c); err != nil {
		return err
	}
	if client, err = env.HTTPClient(ctx); err != nil {
		return err
	}
	p = newPrinter()
	p.afterStepUp = true
	if err := o.fetch(ctx, client, req, s.in, p); err != nil {
		return err
	}
	return p.finish(ctx)
}

// replayable reports whether the request can be sent a second time
// after a step-up: its body is not stdin.
func (o *apiOptions) replayable() bool {
	return o.input != "-" && !usesStdin(o.typedFields)
}

// stepUpNeeded is the first page's step-up challenge, not yet printed:
// `latch api --step-up` logs in for it and sends the request again.
type stepUpNeeded struct{ c *stepup.Challenge }

func (e *stepUpNeeded) Error() string { return "step-up needed" }

// prepare validates the flags and resolves the first request.
func (o *apiOptions) prepare(ctx context.Context, env apiEnv, stdin io.Reader) (*apiRequest, error) {
	method := strings.ToUpper(o.method)
	if !validMethod(method) {
		return nil, usageError(fmt.Errorf("api: invalid method %q", o.method))
	}
	header, err := parseHeaders(o.headers)
	if err != nil {
		return nil, usageError(fmt.Errorf("api: %w", err))
	}
	params, err := o.params(stdin)
	if err != nil {
		return nil, err
	}
	r := &apiRequest{method: method, header: header, params: params, graphQL: o.path == "graphql"}
	if !o.methodSet {
		r.method = http.MethodGet
		if r.graphQL || len(params) > 0 || o.input != "" {
			r.method = http.MethodPost
		}
	}
	if r.url, err = o.url(ctx, env, params); err != nil {
		return nil, err
	}
	if o.paginate && !r.graphQL && r.method != http.MethodGet {
		return nil, usageError(fmt.Errorf("api: --paginate is only supported for GET requests, not %s", r.method))
	}
	u, err := url.Parse(r.url)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageError(fmt.Errorf("api: invalid URL %q", r.url))
	}
	return r, nil
}

// params parses the -f and -F fields.
func (o *apiOptions) params(stdin io.Reader) (map[string]any, error) {
	fields := make([]apiField, 0, len(o.rawFields)+len(o.typedFields))
	for _, f := range o.rawFields {
		fields = append(fields, apiField{raw: f})
	}
	for _, f := range o.typedFields {
		fields = append(fields, apiField{raw: f, typed: true})
	}
	if o.input == "-" && usesStdin(o.typedFields) {
		return nil, usageError(errors.New("api: --input - and a @- field cannot both read stdin"))
	}
	params, err := parseAPIFields(fields, stdin)
	if err != nil {
		return nil, usageError(fmt.Errorf("api: %w", err))
	}
	return params, nil
}

// url resolves PATH: the GraphQL endpoint, a full URL, or a path on the
// REST base.
func (o *apiOptions) url(ctx context.Context, env apiEnv, params map[string]any) (string, error) {
	switch {
	case o.path == "graphql":
		if o.paginate {
			if o.input != "" {
				return "", usageError(errors.New("api: --paginate with --input is not supported for graphql"))
			}
			q, _ := params["query"].(string)
			if !endCursorVar.MatchString(q) {
				return "", usageError(errors.New("api: --paginate needs a GraphQL query that declares `$endCursor: String`"))
			}
		}
		return env.GraphQLURL(ctx)
	case isFullURL(o.path):
		return o.path, nil
	}
	base, err := env.APIURL(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(o.path, "/"), nil
}

// apiBody is a request's body: size -1 when unknown, getBody to replay it.
type apiBody struct {
	r       io.Reader
	size    int64
	getBody func() (io.ReadCloser, error)
	json    bool
}

// body picks the body of one page's request and adds the fields to u's
// query when they go there.
func (o *apiOptions) body(r *apiRequest, u *url.URL, cursor string, page int, stdin io.Reader) (apiBody, error) {
	b := apiBody{size: -1}
	var err error
	switch {
	case page > 0 && !r.graphQL:
		// The next link has everything.
	case o.input != "":
		if b.r, b.size, b.getBody, err = openInput(o.input, stdin); err != nil {
			return b, err
		}
		if len(r.params) > 0 {
			addQuery(u, r.params)
		}
	case r.graphQL:
		params := r.params
		if cursor != "" {
			params = cloneMap(r.params)
			params["endCursor"] = cursor
		}
		if b.r, err = graphQLBody(params); err != nil {
			return b, usageError(fmt.Errorf("api: %w", err))
		}
		b.json = true
	case len(r.params) == 0:
	case r.method == http.MethodGet || r.method == http.MethodHead:
		addQuery(u, r.params)
	default:
		if b.r, err = jsonBody(r.params); err != nil {
			return b, err
		}
		b.json = true
	}
	return b, nil
}

// fetch sends the request and, with --paginate, every following page.
func (o *apiOptions) fetch(ctx context.Context, client *http.Client, r *apiRequest, stdin io.Reader, p *apiPrinter) error {
	target := r.url
	var cursor string
	seen := map[string]bool{}
	for page := 0; ; page++ {
		req, err := o.newRequest(ctx, r, target, cursor, page, stdin)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return requestError(req, err)
		}
		next, err := p.page(ctx, resp, r.graphQL)
		resp.Body.Close()
		if err != nil || !o.paginate || next == "" {
			return err
		}
		if seen[next] {
			return fmt.Errorf("api: pagination repeated %q; stopping", next)
		}
		seen[next] = true
		if r.graphQL {
			cursor = next
		} else {
			target = next
		}
	}
}

// newRequest builds the request for one page. Pages after the first carry
// no fields or input: a REST next link holds its own query, and GraphQL
// only changes $endCursor.
func (o *apiOptions) newRequest(ctx context.Context, r *apiRequest, target, cursor string, page int, stdin io.Reader) (*http.Request, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("api: parse URL: %w", err)
	}
	b, err := o.body(r, u, cursor, page, stdin)
	if err != nil {
		return nil, err
	}
	body, size, getBody, isJSON := b.r, b.size, b.getBody, b.json
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		if rc, ok := body.(io.Closer); ok {
			rc.Close()
		}
		return nil, fmt.Errorf("api: %w", err)
	}
	if getBody != nil || size >= 0 {
		req.GetBody = getBody
		req.ContentLength = size
		if size == 0 {
			req.Body.Close()
			req.Body = http.NoBody
		}
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h := r.header.Get("Host"); h != "" {
		req.Host = h
	}
	if isJSON && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json, */*;q=0.5")
	}
	return req, nil
}

// openInput opens --input. A regular file streams with a known length and
// can be reopened, so the transport can replay it after a 401 (RFC 6750
// §3.1). Stdin and other streams cannot be replayed.
func openInput(name string, stdin io.Reader) (body io.Reader, size int64, getBody func() (io.ReadCloser, error), err error) {
	if name == "-" {
		return io.NopCloser(stdin), -1, nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, usageError(fmt.Errorf("api: open input: %w", err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("api: stat input: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return f, -1, nil, nil
	}
	getBody = func() (io.ReadCloser, error) {
		g, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reopen input: %w", err)
		}
		return g, nil
	}
	return f, fi.Size(), getBody, nil
}

// requestError drops the URL's query from a client error, which may carry
// secrets, and keeps the cause for errors.Is (auth errors map to exit 4).
func requestError(req *http.Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	prefix := req.Method + " " + safeURL(req.URL)
	if strings.HasPrefix(err.Error(), prefix) { // cosmetic: the transport named it
		return err
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

func safeURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment = nil, "", false, ""
	return c.String()
}

func parseHeaders(hs []string) (http.Header, error) {
	h := http.Header{}
	for _, s := range hs {
		k, v, ok := strings.Cut(s, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %q: want 'Key: value'", s)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, nil
}

// validMethod reports whether m is an RFC 9110 §9.1 token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < '!' || c > '~' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

func isFullURL(p string) bool {
	l := strings.ToLower(p)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func usesStdin(typed []string) bool {
	for _, f := range typed {
		if _, v, _ := strings.Cut(f, "="); v == "@-" {
			return true
		}
	}
	return false
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}
