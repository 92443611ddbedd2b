package oauthtest

import (
	"net/http"
	"net/url"
)

// addIss adds iss to the authorization response that next redirects with
// (RFC 9207 §2), as the quirks ask.
func (s *Server) addIss(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := s.quirks()
		if !q.sendsIss() {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&issWriter{ResponseWriter: w, iss: s.issuer(q)}, r)
	})
}

// issWriter adds iss to the Location of a redirect that carries an
// authorization response.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w *issWriter) WriteHeader(code int) {
	if code == http.StatusFound || code == http.StatusSeeOther {
		if u, err := url.Parse(w.Header().Get("Location")); err == nil {
			q := u.Query()
			if (q.Has("code") || q.Has("error")) && !q.Has("iss") {
				q.Set("iss", w.iss)
				u.RawQuery = q.Encode()
				w.Header().Set("Location", u.String())
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}
