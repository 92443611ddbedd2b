package register

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchdev/latch/oauthtest"
)

// Against the dev server's RFC 7591 endpoint: a public client registers,
// and a confidential one is refused with the server's reason.
func TestRegisterWithDevServer(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{Registration: true})
	defer srv.Close()
	c, err := Register(t.Context(), nil, srv.URL+"/register", Request{
		ClientName: "latch", RedirectURIs: []string{"http://127.0.0.1/callback"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, TokenEndpointAuthMethod: "none",
	})
	if err != nil || !strings.HasPrefix(c.ClientID, "dyn-") || c.ClientIDIssuedAt == 0 {
		t.Fatalf("Register: %+v, %v", c, err)
	}
	_, err = Register(t.Context(), nil, srv.URL+"/register", Request{
		RedirectURIs: []string{"http://127.0.0.1/callback"}, TokenEndpointAuthMethod: "client_secret_basic",
	})
	var re *Error
	if !errors.As(err, &re) || re.Code != "invalid_client_metadata" || re.StatusCode != 400 {
		t.Fatalf("confidential client: %v", err)
	}
	_, err = Register(t.Context(), nil, srv.URL+"/register", Request{
		RedirectURIs: []string{"http://evil.example/cb"}, TokenEndpointAuthMethod: "none",
	})
	if !errors.As(err, &re) || re.Code != "invalid_redirect_uri" {
		t.Fatalf("non-loopback http redirect: %v", err)
	}
}

// A hostile answer: its error text is redacted, and a 200 without a
// client_id is an error.
func TestRegisterBadAnswers(t *testing.T) {
	mode := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch mode {
		case "echo":
			var req map[string]any
			json.NewDecoder(r.Body).Decode(&req)
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client_metadata",
				"error_description": "bad \x1b[2J metadata; client_secret=s3cr3t-value-0123456789"})
		case "empty":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{}`))
		case "html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`<html>oops</html>`))
		}
	}))
	defer srv.Close()
	mode = "echo"
	_, err := Register(t.Context(), nil, srv.URL, Request{})
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) || strings.Contains(err.Error(), "s3cr3t-value") {
		t.Fatalf("echo: %q", err)
	}
	mode = "empty"
	if _, err := Register(t.Context(), nil, srv.URL, Request{}); err == nil || !strings.Contains(err.Error(), "no client_id") {
		t.Fatalf("empty: %v", err)
	}
	mode = "html"
	if _, err := Register(t.Context(), nil, srv.URL, Request{}); err == nil || strings.Contains(err.Error(), "oops") {
		t.Fatalf("html: %v", err)
	}
}
