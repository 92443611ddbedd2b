package oauthtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Counters is a snapshot of what the server saw: token endpoint calls (RFC
// 6749 §3.2), rotations and reuse (RFC 9700 §4.14.2), revocations (RFC 7009)
// and resource answers (RFC 6750). It is served as JSON at GET /_dev/counters.
type Counters struct {
	// TokenCalls counts token endpoint requests by grant_type, faulted ones
	// included. Unknown grant types count as "other", a missing one as "missing".
	TokenCalls       map[string]int `json:"token_calls"`
	CodeExchanges    int            `json:"code_exchanges"`    // codes redeemed
	DeviceGrants     int            `json:"device_grants"`     // device codes redeemed
	RefreshSuccesses int            `json:"refresh_successes"` // rotations (the answer may still be dropped)
	InvalidGrants    int            `json:"invalid_grants"`    // token answers with error=invalid_grant
	ReuseDetections  int            `json:"reuse_detections"`  // rotated refresh tokens presented again
	GraceReuses      int            `json:"grace_reuses"`      // rotated refresh tokens redeemed again within RotationGrace
	CodeReplays      int            `json:"code_replays"`      // redeemed codes presented again
	FamiliesRevoked  int            `json:"families_revoked"`  // by reuse, revocation or RevokeFamily
	Revocations      int            `json:"revocations"`       // RFC 7009 requests that revoked something
	Resource200      int            `json:"resource_200"`      // resource answers 2xx to a valid token
	Resource401      int            `json:"resource_401"`      // resource answers 401
	DevicePolls      int            `json:"device_polls"`      // device_code token requests reaching storage
	SlowDowns        int            `json:"slow_downs"`        // slow_down answers
	Approvals        int            `json:"approvals"`         // logins and device codes approved
	Denials          int            `json:"denials"`           // logins and device codes denied
	FaultsInjected   int            `json:"faults_injected"`   // token calls hit by a fault
	AnswersLost      int            `json:"answers_lost"`      // refreshes processed (rotated) whose answer drop_after dropped
	// ClientAuthFailures counts requests refused with invalid_client for
	// a missing or wrong secret, or the wrong method (Quirks.ClientSecret).
	ClientAuthFailures int `json:"client_auth_failures"`
	// Registrations counts clients registered (RFC 7591).
	Registrations int `json:"registrations"`
	// ClientCredentialGrants counts client credentials grants of
	// authenticated clients (RFC 6749 §4.4); Exchanges token exchanges
	// whose subject token verified (RFC 8693); WorkloadTokens the subject
	// tokens GET /_actions/idtoken handed out.
	ClientCredentialGrants int `json:"client_credential_grants"`
	Exchanges              int `json:"exchanges"`
	WorkloadTokens         int `json:"workload_tokens"`
	// DocumentFetches counts client ID metadata documents fetched.
	DocumentFetches int `json:"document_fetches"`
}

type counterSet struct {
	mu sync.Mutex
	c  Counters
}

func newCounterSet() *counterSet {
	return &counterSet{c: Counters{TokenCalls: map[string]int{}}}
}

func (cs *counterSet) add(f func(*Counters)) {
	cs.mu.Lock()
	f(&cs.c)
	cs.mu.Unlock()
}

func (cs *counterSet) snapshot() Counters {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.c
	c.TokenCalls = maps.Clone(cs.c.TokenCalls)
	return c
}

func (cs *counterSet) reset() {
	cs.mu.Lock()
	cs.c = Counters{TokenCalls: map[string]int{}}
	cs.mu.Unlock()
}

// Faults is a fault plan for the token endpoint (RFC 6749 §3.2). Counts are consumed one per
// matching call, in this order: Latency (every call while set), DropBefore,
// Fail503, HTMLError, then the call is processed, then DropAfter.
// It is accepted as JSON at POST /_dev/faults; latency may be a number of
// nanoseconds or a Go duration string such as "250ms".
type Faults struct {
	Fail503    int           `json:"fail_503"`    // next N calls: 503 with a plain-text body
	DropBefore int           `json:"drop_before"` // next N calls: connection closed, nothing processed
	DropAfter  int           `json:"drop_after"`  // next N refresh_token calls: processed (rotated), then connection closed
	Latency    time.Duration `json:"latency"`     // added before every call
	HTMLError  int           `json:"html_error"`  // next N calls: 500 with an HTML page
	// SlowAnswer delays the answer to every refresh_token call after it
	// was processed (rotated). The server finishes the rotation even if
	// the client gives up meanwhile, as a real server does.
	SlowAnswer time.Duration `json:"slow_answer"`
	// RefreshError, with RefreshErrors N, answers the next N
	// refresh_token calls with this RFC 6749 §5.2 error code and status
	// 400, unprocessed: the refresh token stays live. Entra ID answers
	// interaction_required (OIDC Core §3.1.2.6) when Conditional Access
	// or MFA blocks a refresh.
	RefreshError  string `json:"refresh_error,omitempty"`
	RefreshErrors int    `json:"refresh_errors,omitempty"`
}

// UnmarshalJSON accepts latency as nanoseconds or as a duration string, and
// rejects unknown fields.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var aux struct {
		plain
		Latency    json.RawMessage `json:"latency"`
		SlowAnswer json.RawMessage `json:"slow_answer"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("decode faults: %w", err)
	}
	*f = Faults(aux.plain)
	var err error
	if f.Latency, err = duration("latency", aux.Latency); err != nil {
		return err
	}
	f.SlowAnswer, err = duration("slow_answer", aux.SlowAnswer)
	return err
}

// duration decodes nanoseconds or a Go duration string; absent is 0.
func duration(name string, raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var ns int64
	if err := json.Unmarshal(raw, &ns); err == nil {
		return time.Duration(ns), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("decode %s: %w", name, err)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("decode %s: %w", name, err)
	}
	return d, nil
}

// takeFault consumes one unit of the first matching fault.
func (s *Server) takeFault(isRefresh bool) (latency, slow time.Duration, before string, after bool) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := &s.faults
	latency = f.Latency
	if isRefresh {
		slow = f.SlowAnswer
	}
	switch {
	case f.DropBefore > 0:
		f.DropBefore--
		before = "drop"
	case f.Fail503 > 0:
		f.Fail503--
		before = "503"
	case f.HTMLError > 0:
		f.HTMLError--
		before = "html"
	case isRefresh && f.RefreshErrors > 0 && f.RefreshError != "":
		f.RefreshErrors--
		before = "error:" + f.RefreshError
	case isRefresh && f.DropAfter > 0:
		f.DropAfter--
		after = true
	}
	return latency, slow, before, after
}

const htmlErrorPage = `<!DOCTYPE html>
<html><head><title>500 Internal Server Error</title></head>
<body><h1>Internal Server Error</h1><p>The proxy could not reach the token service.</p></body></html>
`

func grantBucket(gt string) string {
	switch gt {
	case "":
		return "missing"
	case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeDeviceCode):
		return gt
	default:
		return "other"
	}
}

// tokenEndpoint wraps zitadel's token endpoint with counting and fault
// injection. Only POST is allowed (RFC 6749 §3.2).
func (s *Server) tokenEndpoint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "the token endpoint accepts POST only"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		gt := ""
		if err := r.ParseForm(); err == nil {
			gt = r.PostForm.Get("grant_type")
		}
		bucket := grantBucket(gt)
		s.counters.add(func(c *Counters) { c.TokenCalls[bucket]++ })

		latency, slow, before, after := s.takeFault(gt == string(oidc.GrantTypeRefreshToken))
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.closing:
				t.Stop()
				dropConnection(w)
				return
			}
		}
		if before != "" || after {
			s.counters.add(func(c *Counters) { c.FaultsInjected++ })
		}
		switch before {
		case "drop":
			dropConnection(w)
			return
		case "503":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "503 Service Unavailable")
			return
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, htmlErrorPage)
			return
		default:
			if code, ok := strings.CutPrefix(before, "error:"); ok {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": code,
					"error_description": "the user must sign in again at a browser (injected fault)"})
				return
			}
		}

		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code == http.StatusBadRequest {
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &e) == nil && e.Error == "invalid_grant" {
				s.counters.add(func(c *Counters) { c.InvalidGrants++ })
			}
		}
		if s.opts.RefreshIdle > 0 && rec.Code == http.StatusOK {
			s.addRefreshExpiresIn(rec)
		}
		if q := s.quirks(); q.rewritesAnswers() {
			s.rewriteAnswer(q, r, rec)
		}
		if after {
			if rec.Code == http.StatusOK {
				s.counters.add(func(c *Counters) { c.AnswersLost++ })
			}
			dropConnection(w)
			return
		}
		if slow > 0 {
			t := time.NewTimer(slow)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
			}
		}
		maps.Copy(w.Header(), rec.Header())
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// addRefreshExpiresIn adds refresh_token_expires_in to a JSON token
// answer that carries a refresh token (Options.RefreshIdle).
func (s *Server) addRefreshExpiresIn(rec *httptest.ResponseRecorder) {
	var m map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		return
	}
	rt, ok := m["refresh_token"].(string)
	if !ok {
		return
	}
	left, ok := s.store.refreshLeft(rt)
	if !ok {
		return
	}
	m["refresh_token_expires_in"] = left
	rec.Body.Reset()
	_ = json.NewEncoder(rec.Body).Encode(m)
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// --- /_dev API ---------------------------------------------------------------------

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devAPI serves the /_dev/ endpoints, to loopback peers only.
func (s *Server) devAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_dev/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("POST /_dev/reset-counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("GET /_dev/faults", func(w http.ResponseWriter, r *http.Request) {
		s.faultsMu.Lock()
		f := s.faults
		s.faultsMu.Unlock()
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /_dev/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		body := http.MaxBytesReader(w, r.Body, 16<<10)
		if err := json.NewDecoder(body).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		if f.Fail503 < 0 || f.DropBefore < 0 || f.DropAfter < 0 || f.HTMLError < 0 || f.Latency < 0 || f.RefreshErrors < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "fault counts must not be negative"})
			return
		}
		s.SetFaults(f)
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("POST /_dev/expire", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireAccessTokens()
		writeJSON(w, http.StatusOK, map[string]bool{"expired": true})
	})
	mux.HandleFunc("POST /_dev/workload-token", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		sub, aud := r.PostFormValue("subject"), r.PostFormValue("audience")
		ttl, err := time.ParseDuration(cmp.Or(r.PostFormValue("ttl"), "5m"))
		if sub == "" || err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "want subject=… and optionally audience=… and ttl=5m"})
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		io.WriteString(w, s.WorkloadToken(sub, cmp.Or(aud, s.URL), ttl)+"\n")
	})
	mux.HandleFunc("POST /_dev/revoke", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		rt := r.PostFormValue("refresh_token")
		if rt == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "refresh_token is required"})
			return
		}
		if !s.store.revokeFamilyOf(rt) {
			writeJSON(w, http.StatusNotFound, map[string]any{"revoked": false, "error_description": "no live family holds this refresh token"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
	})
	mux.HandleFunc("POST /_dev/device/approve", s.devDecide(true))
	mux.HandleFunc("POST /_dev/device/deny", s.devDecide(false))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) {
			http.Error(w, "the /_dev API answers loopback clients only", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) devDecide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := s.store.decideDevice(r.PostFormValue("user_code"), approve); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"approved": approve})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
