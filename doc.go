// Package latch keeps a command-line tool logged in to an OAuth 2.0 API.
//
// A [Source] holds the current [Token] for one credential and refreshes it
// (RFC 6749 §6) at most once at a time across goroutines and processes. A
// [Transport] reads the Source on every request, refreshes early when the
// expiry is known, and refreshes once and replays once on a 401 (RFC 6750 §3).
// Stores persist the whole token set as one atomic unit; see the keyring and
// filestore packages. The library never prints: anything that talks to a
// person is a func field set by the caller.
package latch
