package credential

import "errors"

// Sentinels for the states of a store and its lock that a caller
// branches on. Use errors.Is.
var (
	// ErrNotFound: the store holds no credential for the key.
	ErrNotFound = errors.New("no stored credential")
	// ErrLockTimeout: another process held the refresh lock past the bound.
	ErrLockTimeout = errors.New("refresh lock wait timed out")
	// ErrStoreReadOnly: the store can be read but not written, so a refresh
	// token must not be spent (its replacement could not be kept).
	ErrStoreReadOnly = errors.New("credential store is read-only")
	// ErrStoreUnavailable: the store cannot be reached at all.
	ErrStoreUnavailable = errors.New("credential store unavailable")
	// ErrUnusable: the stored credential cannot be used until a person
	// fixes it (a corrupt file or item, unsafe permissions, a directory
	// where a file belongs); retrying cannot help. The error names the fix.
	// A login replaces such a credential (Save with a nil old).
	ErrUnusable = errors.New("stored credential unusable")
	// ErrConflict: a compare-and-swap Save or Delete found another set
	// than the one the write was derived from; nothing was written.
	ErrConflict = errors.New("credential changed meanwhile")
	// ErrNoLocker: a store has no cross-process Locker, so refreshes
	// could not be serialised across processes.
	ErrNoLocker = errors.New("credential store has no cross-process lock")
)
