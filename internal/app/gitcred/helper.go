package gitcred

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/latchdev/latch/internal/app/fastcred"
)

// HelperName is the small helper program git runs.
const HelperName = "git-credential-latch"

// helperFlags are the flags git-credential-latch reads itself: the
// global flags that choose a login, and those of `latch credential git`.
var helperFlags = map[string]bool{"host": true, "org": true, "client-id": true, "credential-store": true,
	"api-url": true, "url": true, "username": true}

// Helper is git-credential-latch: `latch credential git` for the one
// case git asks for on almost every request, kept small so that it
// starts fast. It answers get from the stored token when that token is
// valid for longer than latch.DefaultSkew and no tool reported it
// rejected, picking host, org and store exactly as latch does
// (internal/settings); it answers store with nothing, as latch does.
// Everything else — a token to refresh, erase, LATCH_TOKEN, --debug, a
// fleet or auto-probed store, anything unexpected — it hands with the
// same arguments and input to `latch credential git`, which holds the
// refresh transaction. It returns the exit code.
func Helper(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	input, err := readInput(stdin)
	if err != nil || len(input) > MaxInput {
		return delegate(args, input, stdout, stderr)
	}
	if answer, ok := fastAnswer(ctx, args, input, getenv); ok {
		if _, err := io.WriteString(stdout, answer); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", HelperName, err)
			return 1
		}
		return 0
	}
	return delegate(args, input, stdout, stderr)
}

// readInput reads git's request as ReadRequest does: up to its blank
// line or EOF (a person typing one gets the answer at the blank line),
// at most MaxInput+1 bytes.
func readInput(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxInput+1))
	var buf []byte
	for {
		line, err := br.ReadBytes('\n')
		buf = append(buf, line...)
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			return buf, nil
		}
	}
}

// fastAnswer returns the answer when the request can be served without
// latch: false means "ask latch".
func fastAnswer(ctx context.Context, args []string, input []byte, getenv func(string) string) (string, bool) {
	flags, op, ok := parseArgs(args)
	if !ok {
		return "", false
	}
	req, err := ReadRequest(bytes.NewReader(input))
	if err != nil {
		return "", false // latch says what is wrong
	}
	if op == "store" {
		return "", !fastcred.LatchDecides(getenv) // Route's answer for any bound: no config to read
	}
	l, ok := fastcred.Open(func(name string) (string, bool) { v, ok := flags[name]; return v, ok }, getenv)
	if !ok {
		return "", false
	}
	bound, ok := flags["url"]
	if !ok {
		bound = l.Inputs.APIURL(l.Host)
	}
	switch act, err := Route(op, req, bound); {
	case err != nil:
		return "", false // latch says what is wrong
	case act == NotOurs:
		return "", true // git asks its other helpers
	case act != Answer:
		return "", false // an erase: latch marks the token rejected
	}
	tok, ok := l.Token(ctx)
	if !ok {
		return "", false
	}
	username, ok := flags["username"]
	if !ok {
		username = "oauth2"
	}
	answer, err := req.Answer(tok.AccessToken, tok.Expiry, username)
	return answer, err == nil
}

// parseArgs reads --name VALUE and --name=VALUE for helperFlags, then
// one operation; false for anything else.
func parseArgs(args []string) (map[string]string, string, bool) {
	flags := map[string]string{}
	op := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			if op != "" || strings.HasPrefix(a, "-") {
				return nil, "", false
			}
			op = a
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !helperFlags[name] {
			return nil, "", false
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, "", false
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	return flags, op, op != ""
}

// delegate hands the request to `latch credential git ARGS`, with the
// input already read (fastcred.Delegate).
func delegate(args []string, input []byte, stdout, stderr io.Writer) int {
	if len(input) > MaxInput {
		input = input[:MaxInput] // all latch reads
	}
	return fastcred.Delegate(HelperName, append([]string{"latch", "credential", "git"}, args...), input, stdout, stderr)
}
