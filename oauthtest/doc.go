// Package oauthtest is a development OAuth 2.0 authorization server with a
// protected REST and GraphQL API, for tests, demos and `latch dev server`.
// The protocol engine is zitadel/oidc (op); this package supplies the
// in-memory storage, the approve pages, the resource, fault injection and
// counters. Start one in a test like an httptest server:
//
//	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
//	defer srv.Close()
//
// # Authorization server
//
// Clients discover everything from RFC 8414 metadata at
// /.well-known/oauth-authorization-server (OpenID discovery is also served at
// /.well-known/openid-configuration). The endpoints are:
//
//	GET  /authorize              authorization code (RFC 6749 §4.1) with PKCE S256 only (RFC 7636)
//	POST /oauth/token            authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:device_code,
//	                             client_credentials (RFC 6749 §4.4), urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693)
//	POST /device_authorization   device authorization (RFC 8628 §3.1)
//	GET  /device                 verification page (RFC 8628 §3.3), ?user_code= prefills it
//	POST /revoke                 token revocation (RFC 7009)
//	GET  /login                  the approve/deny page zitadel redirects to
//
// Every client is public (RFC 6749 §2.1): send client_id in the form and no
// secret. Any client_id is accepted unless Options.Clients lists them. The
// redirect_uri must be http://127.0.0.1:PORT/any/path or
// http://[::1]:PORT/any/path, on any port (RFC 8252 §7.3); localhost is
// tolerated (RFC 8252 §8.3). A device_code the server never issued answers
// access_denied, as zitadel does.
//
// A client_id that is an https URL (http on loopback) is a client ID
// metadata document (draft-ietf-oauth-client-id-metadata-document), which
// the server fetches, checks and caches for a minute: its redirect_uris
// are the client's.
//
// Programs: the client credentials grant needs an authenticated client,
// with the Quirks.ClientSecret secret or a JWT assertion signed by a key
// given to AddClientKey (RFC 7523 §2.2). Token exchange takes a subject
// token of the server's workload issuer (WorkloadIssuer), minted by
// WorkloadToken, POST /_dev/workload-token, or GET /_actions/idtoken,
// which answers as a GitHub Actions runner does (ActionsRequest gives its
// URL and request token); the access token is the workload's subject's.
//
// Scopes: any scope is accepted; with none, DefaultScope applies (RFC 6749
// §3.3). offline_access is always granted and returned in "scope", so every
// code and device grant yields a refresh token; clients need not send
// "openid" or "offline_access". An id_token comes back from the code grant
// and may be ignored.
//
// Refresh tokens rotate on every use. A refresh token presented after it was
// rotated is reuse: the answer is invalid_grant and the whole family — every
// refresh and access token descending from that login, the newest included —
// is revoked (RFC 9700 §4.14.2). A redeemed authorization code presented
// again likewise revokes what it issued (RFC 6749 §4.1.2). Revoking a refresh
// token at /revoke revokes its family; revoking an access token revokes that
// token.
//
// Device grant: the first poll may come at once; a poll less than half the
// interval after the previous one answers slow_down. With
// Options.DeviceApproveAfter N the first N polls answer
// authorization_pending and the next one gets tokens; otherwise approve on
// the /device page, with ApproveDevice, or with POST /_dev/device/approve.
//
// # Protected resource
//
// Bearer tokens (RFC 6750 §2.1) are checked against the storage; a missing,
// unknown, revoked or expired one gets 401 with
// WWW-Authenticate: Bearer realm="latch-dev", error="invalid_token" (also
// when the token is missing, which RFC 6750 §3.1 allows).
//
//	GET  /v2/user                     {"login","name","id"}
//	ANY  /v2/echo                     {"method","path","headers","query","body"}; Authorization is left out
//	GET  /v2/items?per_page=N&page=M  JSON array of ItemCount items, RFC 8288 Link rel="first|prev|next|last"
//	POST /graphql                     { viewer { login name } items(first:, after:) { nodes { id name } pageInfo { hasNextPage endCursor } totalCount } }
//
// # Fault injection and counters
//
// Over HTTP, to loopback clients only, so that other processes can drive the server:
//
//	GET  /_dev/counters           Counters as JSON
//	POST /_dev/reset-counters     zero the counters
//	GET  /_dev/faults             the remaining fault plan
//	POST /_dev/faults             replace the fault plan; JSON Faults, e.g. {"fail_503":2,"latency":"200ms"}
//	POST /_dev/expire             expire every access token now
//	POST /_dev/workload-token     form subject=..., audience= (default: the server), ttl= (5m): a subject token for token exchange
//	POST /_dev/revoke             form refresh_token=...: revoke its family (404 if none is live)
//	POST /_dev/device/approve     form user_code=...: approve a device authorization
//	POST /_dev/device/deny        form user_code=...: deny it
//
// The same operations are methods: Counters, ResetCounters, SetFaults,
// ExpireAccessTokens, RevokeFamily, ApproveDevice, DenyDevice.
//
// zitadel logs protocol errors through slog's default logger. The errors
// this package hands it carry no tokens or codes.
package oauthtest
