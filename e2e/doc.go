// Package e2e proves latch's promises end to end: many real `latch`
// processes against the real dev server (package oauthtest), with a real
// HTTP browser for the loopback login. It has only tests.
package e2e
