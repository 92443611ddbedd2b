package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Socket is a Sink that answers the access token over HTTP on a Unix
// socket, to processes of the user that runs it only (the peer's uid is
// checked on every connection; the socket file is also mode 0600):
//
//	GET /token       the access token and a newline (text/plain)
//	GET /token.json  {"access_token", "token_type", "expires_at", "expires_in"}
//
// It answers 503 before the first token, after the token expired, and
// after the grant died; 403 to another user. It never serves the refresh
// token.
type Socket struct {
	path string
	uid  int
	srv  *http.Server
	done chan struct{}

	mu   sync.Mutex
	tok  *latch.Token
	dead bool
}

type peerKey struct{}

// ListenSocket serves a Socket at path, whose directory must exist. A
// stale socket file left by a killed agent is replaced; a socket another
// process serves, or a file that is not a socket, is refused.
func ListenSocket(path string) (*Socket, error) {
	if !peerCredentials {
		return nil, errors.New("socket " + path + ": this system does not tell a socket's peer, so the socket could not refuse other users; use a token file")
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("socket %s: the directory %s: %w", path, filepath.Dir(path), unwrapPath(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("socket %s: %s is not a directory", path, filepath.Dir(path))
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("socket %s: the path exists and is not a socket; refusing to replace it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another process serves it (a latch agent already running?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket %s: remove the stale socket: %w", path, unwrapPath(err))
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", path, unwrapPath(err))
	}
	s := &Socket{path: path, uid: os.Getuid(), done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			uid := -1
			if uc, ok := c.(*net.UnixConn); ok {
				if id, err := peerUID(uc); err == nil {
					uid = id
				}
			}
			return context.WithValue(ctx, peerKey{}, uid)
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *Socket) String() string { return "socket " + s.path }

// Deliver makes t the token the socket answers.
func (s *Socket) Deliver(t *latch.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok, s.dead = t, false
	return nil
}

// Clear makes the socket answer that the grant is dead.
func (s *Socket) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok, s.dead = nil, true
	return nil
}

// Close stops serving and removes the socket file.
func (s *Socket) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

func (s *Socket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if uid, _ := r.Context().Value(peerKey{}).(int); uid != s.uid {
		http.Error(w, "this socket serves uid "+strconv.Itoa(s.uid)+" only", http.StatusForbidden)
		return
	}
	if r.URL.Path != "/token" && r.URL.Path != "/token.json" {
		http.Error(w, "not found: ask GET /token or GET /token.json", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	t, dead := s.tok, s.dead
	s.mu.Unlock()
	now := time.Now()
	switch {
	case dead:
		http.Error(w, "the grant is dead; log in again", http.StatusServiceUnavailable)
		return
	case t == nil:
		http.Error(w, "no token yet", http.StatusServiceUnavailable)
		return
	case t.Expired(now):
		http.Error(w, "the access token expired and the agent could not refresh it yet", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/token" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(t.AccessToken + "\n"))
		return
	}
	typ := t.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	body := map[string]any{"access_token": t.AccessToken, "token_type": typ}
	if !t.Expiry.IsZero() {
		body["expires_at"] = t.Expiry.UTC().Format(time.RFC3339)
		body["expires_in"] = int64(t.Expiry.Sub(now).Seconds())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
