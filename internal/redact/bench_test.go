package redact

import (
	"net/http"
	"testing"
)

var tokenAnswer = []byte(`{"access_token":"at-0123456789abcdefghijklmnop","token_type":"Bearer",` +
	`"expires_in":3600,"refresh_token":"rt-0123456789abcdefghijklmnop","scope":"read write",` +
	`"id_token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ."}`)

func BenchmarkJSON(b *testing.B) {
	b.SetBytes(int64(len(tokenAnswer)))
	for b.Loop() {
		JSON(tokenAnswer)
	}
}

func BenchmarkForm(b *testing.B) {
	form := []byte("grant_type=refresh_token&refresh_token=rt-0123456789abcdefghijklmnop&client_id=cli&scope=read+write")
	b.SetBytes(int64(len(form)))
	for b.Loop() {
		Form(form)
	}
}

func BenchmarkHeader(b *testing.B) {
	h := http.Header{
		"Authorization": {"Bearer at-0123456789abcdefghijklmnop"},
		"Content-Type":  {"application/json"},
		"User-Agent":    {"latch/dev"},
		"Accept":        {"application/json"},
	}
	for b.Loop() {
		Header(h)
	}
}
