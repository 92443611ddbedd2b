package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filestore"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/storekit"
)

// cliEnv runs cli.Run in-process against one dev server and config dir.
type cliEnv struct {
	env map[string]string
	dir string
}

func (e *cliEnv) run(stdin string, args ...string) (out string, code int) {
	var buf bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(stdin), &buf, &buf,
		func(k string) string { return e.env[k] })
	return buf.String(), code
}

// stored returns the one stored credential.
func (e *cliEnv) stored(t testing.TB) *latch.Token {
	t.Helper()
	st := filestore.New(e.dir)
	keys, err := st.List(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("list credentials: %v, %d keys; want 1", err, len(keys))
	}
	tok, err := st.Load(context.Background(), keys[0])
	if err != nil {
		t.Fatalf("load credential: %v", err)
	}
	return tok
}

func assertAbsent(t testing.TB, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Fatalf("secret (fingerprint %s) appears in the output:\n%s", storekit.Fingerprint(s), out)
		}
	}
}

// secret turns fuzz bytes into a token-shaped secret of at least 20
// characters, so that finding it in the output cannot be a coincidence.
func secret(prefix string, b []byte) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	var sb strings.Builder
	sb.WriteString(prefix)
	for _, c := range b {
		sb.WriteByte(chars[int(c)%len(chars)])
	}
	for sb.Len() < 20 {
		sb.WriteByte('Q')
	}
	return sb.String()
}

// FuzzDebugRedaction pushes random access and refresh tokens through
// login (--with-token), refresh and api, all under LATCH_DEBUG=1, and
// checks that no secret, random or issued by the server, appears on
// stdout or stderr (LESSONS 16).
func FuzzDebugRedaction(f *testing.F) {
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, DeviceApproveAfter: 1, DeviceInterval: time.Second})
	f.Cleanup(srv.Close)
	dir := f.TempDir()
	e := &cliEnv{dir: dir, env: map[string]string{
		"LATCH_HOST": srv.URL, "LATCH_CONFIG_DIR": dir, "HOME": dir,
		"LATCH_CREDENTIAL_STORE": "file", "LATCH_DEBUG": "1",
	}}
	// A real login under --debug: the device code and issued tokens
	// never appear.
	out, code := e.run("", "auth", "login", "--device")
	if code != 0 {
		f.Fatalf("device login: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "> POST ") {
		f.Fatalf("debug log missing from output:\n%s", out)
	}
	tok := e.stored(f)
	assertAbsent(f, out, tok.AccessToken, tok.RefreshToken)
	realRT := tok.RefreshToken

	f.Add([]byte("seed-access"), []byte("seed-refresh"))
	f.Add([]byte{0, 1, 2, 3}, []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, a, r []byte) {
		at, rt := secret("at", a), secret("rt", r)

		// A bare random token: userinfo rejects it, nothing is stored,
		// and it appears neither in the error nor in the debug log.
		out, code := e.run(at, "--debug", "auth", "login", "--with-token")
		if code != ExitAuth || !strings.Contains(out, "the server rejected the token") {
			t.Fatalf("login --with-token, a bad token: exit %d:\n%s", code, out)
		}
		assertAbsent(t, out, at)

		// A random access token with the real refresh token: the API
		// answers 401, latch refreshes and replays. It expires within
		// a minute, so --with-token stores it unchecked, and in 30 s,
		// so the api command sends it before refreshing.
		in := fmt.Sprintf(`{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":30}`, at, realRT)
		out, code = e.run(in, "--debug", "auth", "login", "--with-token")
		if code != 0 {
			t.Fatalf("login --with-token: exit %d:\n%s", code, out)
		}
		assertAbsent(t, out, at, realRT)
		out, code = e.run("", "api", "v2/user")
		if code != 0 {
			t.Fatalf("api: exit %d:\n%s", code, out)
		}
		if !strings.Contains(out, "< 401") && !strings.Contains(out, "401") {
			t.Fatalf("want the 401 in the debug log:\n%s", out)
		}
		tok := e.stored(t)
		assertAbsent(t, out, at, realRT, tok.AccessToken, tok.RefreshToken)
		realRT = tok.RefreshToken

		// A random refresh token on an expired access token: the server
		// answers invalid_grant; neither secret appears. (The real
		// refresh token it replaces is kept valid for the next input.)
		in = fmt.Sprintf(`{"access_token":%q,"refresh_token":%q,"expires_in":0.001}`, at, rt)
		if out, code = e.run(in, "auth", "login", "--with-token", "--keep-replaced"); code != 0 {
			t.Fatalf("login --with-token: exit %d:\n%s", code, out)
		}
		out, code = e.run("", "auth", "token")
		if code != ExitAuth {
			t.Fatalf("auth token with a bogus refresh token: exit %d, want %d:\n%s", code, ExitAuth, out)
		}
		assertAbsent(t, out, at, rt)
		if !strings.Contains(out, "latch auth login") {
			t.Fatalf("want the re-login hint:\n%s", out)
		}
	})
}
