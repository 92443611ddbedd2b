package oauthtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-
// document): a client_id that is an https URL (http on loopback here) is
// the address of the client's metadata, which the server fetches, checks
// and caches for a minute, instead of asking the client to register.

// documents caches fetched client metadata documents.
type documents struct {
	mu    sync.Mutex
	cache map[string]docEntry
	hc    *http.Client
}

type docEntry struct {
	redirects []string
	err       error
	until     time.Time
}

func newDocuments() *documents {
	return &documents{cache: map[string]docEntry{}, hc: &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// isDocumentID reports whether id is a client ID metadata document URL.
func isDocumentID(id string) bool {
	return strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://127.0.0.1") ||
		strings.HasPrefix(id, "http://localhost") || strings.HasPrefix(id, "http://[::1]")
}

// document returns the redirect URIs of id's document, fetching it when
// the cache has none (§4.1): 200 with no redirect followed, at most 5 KiB
// of JSON, its own client_id, no secret, redirect URIs.
func (s *storage) document(ctx context.Context, id string) ([]string, error) {
	d := s.docs
	d.mu.Lock()
	e, ok := d.cache[id]
	d.mu.Unlock()
	if ok && s.now().Before(e.until) {
		return e.redirects, e.err
	}
	redirects, err := d.fetch(ctx, id)
	s.counters.add(func(c *Counters) { c.DocumentFetches++ })
	d.mu.Lock()
	d.cache[id] = docEntry{redirects: redirects, err: err, until: s.now().Add(time.Minute)}
	d.mu.Unlock()
	return redirects, err
}

func (d *documents) fetch(ctx context.Context, id string) ([]string, error) {
	u, err := url.Parse(id)
	if err != nil || u.Fragment != "" || u.User != nil || u.Path == "" || u.Path == "/" {
		return nil, errors.New("the client_id is not a client ID metadata document URL")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the client metadata document could not be fetched: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the client metadata document answered HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 5<<10+1))
	if err != nil || len(b) > 5<<10 {
		return nil, errors.New("the client metadata document is larger than 5 KiB")
	}
	var doc struct {
		ClientID     string   `json:"client_id"`
		RedirectURIs []string `json:"redirect_uris"`
		Secret       any      `json:"client_secret"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	switch {
	case json.Unmarshal(b, &doc) != nil:
		return nil, errors.New("the client metadata document is not JSON")
	case doc.ClientID != id:
		return nil, errors.New("the client metadata document names another client_id")
	case doc.Secret != nil || strings.HasPrefix(doc.AuthMethod, "client_secret"):
		return nil, errors.New("the client metadata document holds a secret")
	case len(doc.RedirectURIs) == 0:
		return nil, errors.New("the client metadata document lists no redirect_uris")
	}
	return doc.RedirectURIs, nil
}

// documentClient is a client known by its metadata document: a public
// native client whose redirect URIs are the document's, a loopback one
// without a port admitting any port (RFC 8252 §7.3).
type documentClient struct {
	publicClient
	redirects []string
}

func (c documentClient) RedirectURIs() []string { return c.redirects }

func (c documentClient) RedirectURIGlobs() []string {
	var globs []string
	for _, r := range c.redirects {
		u, err := url.Parse(r)
		if err != nil || u.Port() != "" || u.Scheme != "http" {
			continue
		}
		if h := u.Hostname(); h == "127.0.0.1" || h == "localhost" || h == "::1" {
			host := regexp.QuoteMeta(u.Host)
			if h == "::1" {
				host = `\[::1\]`
			}
			globs = append(globs, "http://"+host+":*"+u.EscapedPath())
		}
	}
	return globs
}
