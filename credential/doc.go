// Package credential defines what every store and tool shares about one
// credential: its token set ([Token]), the [Key] it is stored under, the
// [Store] and [Locker] interfaces with compare-and-swap writes, the
// errors a store returns, and the [Timeouts] its lock honours. It has no
// HTTP client and no OAuth flow, so a program that only reads a stored
// token (the small credential helpers git, Docker and kubectl run)
// links neither. Package latch re-exports every name here (latch.Token
// is credential.Token), as package os does for io/fs; use either.
package credential
