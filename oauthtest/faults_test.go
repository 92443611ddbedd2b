package oauthtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// rawRefresh refreshes and returns the transport error, if any.
func rawRefresh(ctx context.Context, s *Server, rt string) (*http.Response, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {testClient}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// A fresh transport: a dropped connection must not be retried on another.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return c.Do(req)
}

func TestFaults(t *testing.T) {
	t.Run("Fail503", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{Fail503: 2})
		for range 2 {
			got := refresh(t, s, a.RefreshToken)
			if got.Status != http.StatusServiceUnavailable {
				t.Fatalf("got %d, want 503", got.Status)
			}
		}
		wantTokens(t, refresh(t, s, a.RefreshToken)) // nothing was rotated
	})

	t.Run("HTMLError", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{HTMLError: 1})
		got := refresh(t, s, a.RefreshToken)
		if got.Status != http.StatusInternalServerError || !strings.HasPrefix(got.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("got %d %q, want 500 text/html", got.Status, got.Header.Get("Content-Type"))
		}
		wantTokens(t, refresh(t, s, a.RefreshToken))
	})

	t.Run("DropBefore", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{DropBefore: 1})
		if resp, err := rawRefresh(context.Background(), s, a.RefreshToken); err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a dropped connection", resp.StatusCode)
		}
		wantTokens(t, refresh(t, s, a.RefreshToken)) // not processed, so not rotated
		if got := s.Counters().RefreshSuccesses; got != 1 {
			t.Errorf("refresh_successes: got %d, want 1", got)
		}
	})

	t.Run("DropAfter rotates and loses the answer", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{DropAfter: 1})
		if resp, err := rawRefresh(context.Background(), s, a.RefreshToken); err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a dropped connection", resp.StatusCode)
		}
		c := s.Counters()
		if c.RefreshSuccesses != 1 {
			t.Fatalf("refresh_successes: got %d, want 1 (rotated)", c.RefreshSuccesses)
		}
		// The client still holds the old token: spending it again is reuse.
		wantError(t, refresh(t, s, a.RefreshToken), 400, "invalid_grant")
		if got := s.Counters().ReuseDetections; got != 1 {
			t.Errorf("reuse_detections: got %d, want 1", got)
		}
	})

	t.Run("DropAfter spares other grants", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		s.SetFaults(Faults{DropAfter: 1})
		login(t, s) // the code exchange is not a refresh
		if got := s.Counters().FaultsInjected; got != 0 {
			t.Errorf("faults_injected: got %d, want 0", got)
		}
	})

	t.Run("Latency", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{Latency: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := rawRefresh(ctx, s, a.RefreshToken)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the client deadline to pass first", err)
		}
		s.SetFaults(Faults{})
		wantTokens(t, refresh(t, s, a.RefreshToken)) // the delayed call never ran
	})

	t.Run("Latency is cut short by Close", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		s.SetFaults(Faults{Latency: time.Hour})
		errc := make(chan error, 1)
		go func() {
			resp, err := rawRefresh(context.Background(), s, a.RefreshToken)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		for s.Counters().TokenCalls["refresh_token"] == 0 {
			time.Sleep(time.Millisecond)
		}
		s.Close()
		if err := <-errc; err == nil {
			t.Fatal("got an answer, want the connection closed")
		}
	})

	t.Run("over HTTP", func(t *testing.T) {
		s, _ := start(t, Options{AutoApprove: true})
		a := login(t, s)
		resp, err := http.Post(s.URL+"/_dev/faults", "application/json", strings.NewReader(`{"fail_503":1,"html_error":1,"latency":"1ms"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /_dev/faults: got %d", resp.StatusCode)
		}
		if got := refresh(t, s, a.RefreshToken).Status; got != http.StatusServiceUnavailable {
			t.Fatalf("first call: got %d, want 503", got)
		}
		resp, err = http.Get(s.URL + "/_dev/faults")
		if err != nil {
			t.Fatal(err)
		}
		var f Faults
		if err := decodeJSON(resp, &f); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if f != (Faults{HTMLError: 1, Latency: time.Millisecond}) {
			t.Fatalf("remaining faults: got %+v, want html_error 1 latency 1ms", f)
		}
		for _, bad := range []string{`{"fail_503":-1}`, `{"nope":1}`, `{"latency":"soon"}`, `[`} {
			resp, err := http.Post(s.URL+"/_dev/faults", "application/json", strings.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST /_dev/faults %s: got %d, want 400", bad, resp.StatusCode)
			}
		}
	})
}

func TestCounters(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})
	a := login(t, s)
	b := refresh(t, s, a.RefreshToken)
	refresh(t, s, a.RefreshToken) // reuse
	wantResource(t, s, b.AccessToken, http.StatusUnauthorized)
	c := login(t, s)
	wantResource(t, s, c.AccessToken, http.StatusOK)
	postForm(t, s.URL+"/oauth/token", url.Values{"grant_type": {"password"}})
	postForm(t, s.URL+"/revoke", url.Values{"token": {c.RefreshToken}, "client_id": {testClient}})

	want := Counters{
		TokenCalls:       map[string]int{"authorization_code": 2, "refresh_token": 2, "other": 1},
		CodeExchanges:    2,
		RefreshSuccesses: 1,
		InvalidGrants:    1,
		ReuseDetections:  1,
		FamiliesRevoked:  2,
		Revocations:      1,
		Resource200:      1,
		Resource401:      1,
		Approvals:        2,
	}
	got := s.Counters()
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Fatalf("counters:\ngot  %s\nwant %s", g, w)
	}

	resp, err := http.Get(s.URL + "/_dev/counters")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if g, w := strings.TrimSpace(string(body)), mustJSON(t, want); g != w {
		t.Fatalf("GET /_dev/counters:\ngot  %s\nwant %s", g, w)
	}

	resp, err = http.Post(s.URL+"/_dev/reset-counters", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g, w := mustJSON(t, s.Counters()), mustJSON(t, Counters{TokenCalls: map[string]int{}}); g != w {
		t.Fatalf("after reset: got %s, want %s", g, w)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDevAPILoopbackOnly(t *testing.T) {
	s, _ := start(t, Options{})
	for _, path := range []string{"/_dev/counters", "/_dev/faults"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "192.0.2.7:4000"
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("GET %s from 192.0.2.7: got %d, want 403", path, rec.Code)
		}
	}
}

func TestConcurrentRefresh(t *testing.T) {
	s, _ := start(t, Options{AutoApprove: true})

	t.Run("same token: one rotation, the rest is reuse", func(t *testing.T) {
		a := login(t, s)
		s.ResetCounters()
		const n = 8
		answers := make([]tokenAnswer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { answers[i] = refresh(t, s, a.RefreshToken) })
		}
		wg.Wait()
		var won []tokenAnswer
		for _, ans := range answers {
			switch {
			case ans.Status == http.StatusOK:
				won = append(won, ans)
			case ans.Error != "invalid_grant":
				t.Errorf("got %d %q, want 200 or invalid_grant", ans.Status, ans.Error)
			}
		}
		if len(won) != 1 {
			t.Fatalf("got %d successful refreshes, want exactly 1", len(won))
		}
		wantResource(t, s, won[0].AccessToken, http.StatusUnauthorized) // reuse revoked the winner too
		c := s.Counters()
		if c.RefreshSuccesses != 1 || c.InvalidGrants != n-1 || c.ReuseDetections < 1 || c.FamiliesRevoked != 1 {
			t.Errorf("counters: got %+v", c)
		}
	})

	t.Run("separate families in parallel", func(t *testing.T) {
		const n = 8
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				a := login(t, s)
				for range 5 {
					a = refresh(t, s, a.RefreshToken)
					wantTokens(t, a)
					wantResource(t, s, a.AccessToken, http.StatusOK)
				}
			})
		}
		wg.Wait()
	})
}
