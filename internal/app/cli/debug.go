package cli

import (
	"io"
	"net/http"

	"github.com/latchdev/latch/internal/app/debughttp"
)

// debugTransport logs every request and response to out, with secrets
// redacted structurally (internal/redact), token-endpoint exchanges
// included.
func debugTransport(base http.RoundTripper, out io.Writer) http.RoundTripper {
	return &debughttp.Transport{Base: base, Out: out}
}
