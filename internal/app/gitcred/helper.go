package gitcred

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/credstore"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/settings"
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
	if !ok || settings.Debug(getenv) || strings.TrimSpace(getenv(settings.EnvToken)) != "" || getenv(settings.EnvTokenTimeout) != "" {
		return "", false // latch uses, or checks, what these say
	}
	req, err := ReadRequest(bytes.NewReader(input))
	if err != nil {
		return "", false // latch says what is wrong
	}
	if op == "store" {
		return "", true // Route's answer for any bound: no config to read
	}
	dir, err := config.Dir(getenv)
	if err != nil {
		return "", false
	}
	cf, err := config.Load(dir)
	if err != nil {
		return "", false
	}
	flag := func(name string) (string, bool) { v, ok := flags[name]; return v, ok }
	in := settings.Inputs{Flag: flag, Getenv: getenv, Config: cf}
	host := in.Host()
	if host == "" || discovery.CheckURL(host) != nil {
		return "", false
	}
	host = config.Normalize(host)
	bound, ok := flags["url"]
	if !ok {
		bound = in.APIURL(host)
	}
	switch act, err := Route(op, req, bound); {
	case err != nil:
		return "", false // latch says what is wrong
	case act == NotOurs:
		return "", true // git asks its other helpers
	case act != Answer:
		return "", false // an erase: latch marks the token rejected
	}
	key, ok := in.Key(host)
	if !ok {
		return "", false
	}
	mode, err := credstore.ParseMode(in.Store(host))
	if err != nil || mode == credstore.Auto {
		return "", false // a fleet store's URL, or a keyring to probe
	}
	c, err := credstore.Open(ctx, credstore.Options{Mode: mode, Dir: dir, Service: settings.KeyringService, NoProbe: true})
	if err != nil {
		return "", false
	}
	tok, err := c.Store.Load(ctx, key)
	if err != nil || !tok.Fresh(time.Now(), latch.DefaultSkew) {
		return "", false
	}
	if _, err := os.Stat(settings.RejectedMark(dir, tok.AccessToken)); err == nil {
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
// input already read, and returns its exit code; on Unix latch replaces
// this process, so git's signals and latch's exit status pass straight.
func delegate(args []string, input []byte, stdout, stderr io.Writer) int {
	bin, err := latchPath()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", HelperName, err)
		return 2
	}
	if len(input) > MaxInput {
		input = input[:MaxInput] // all latch reads
	}
	argv := append([]string{"latch", "credential", "git"}, args...)
	code, err := runLatch(bin, argv, input, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: run %s: %v\n", HelperName, bin, err)
		return 1
	}
	return code
}

// latchPath finds latch beside this program, else on PATH.
func latchPath() (string, error) {
	p, err := settings.Program("latch")
	if err != nil {
		return "", errors.New("latch is not installed beside it nor on PATH: install both (CGO_ENABLED=0 go install ./cmd/... in a clone of latch)")
	}
	return p, nil
}
