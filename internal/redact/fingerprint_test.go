package redact_test

import (
	"net/http"
	"testing"

	"github.com/latchdev/latch/internal/redact"
	"github.com/latchdev/latch/storekit"
)

// The fingerprint in a redacted header must be storekit.Fingerprint, so that a
// person can match it against `latch auth status`.
func TestFingerprintMatchesLatch(t *testing.T) {
	tok := "an-access-token-of-some-length"
	got := redact.Header(http.Header{"Authorization": {"Bearer " + tok}}).Get("Authorization")
	if want := "Bearer [redacted fp:" + storekit.Fingerprint(tok) + "]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
