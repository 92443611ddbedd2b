package latch

import "github.com/latchdev/latch/credential"

// Store persists token sets as atomic units, with compare-and-swap Save
// and Delete (see credential.Store).
type Store = credential.Store

// WriteChecker is implemented by stores that can tell, before a refresh
// token is spent, whether its replacement could be saved (see
// credential.WriteChecker).
type WriteChecker = credential.WriteChecker

// Locker serialises every write of one credential across processes (see
// credential.Locker).
type Locker = credential.Locker

// Waiter is implemented by Lockers that can wait, without taking the
// lock, until no process holds it (see credential.Waiter).
type Waiter = credential.Waiter

// Lister is implemented by stores that can enumerate their credentials.
type Lister = credential.Lister
