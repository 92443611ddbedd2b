//go:build !unix

package testdb

import "os/exec"

// runAs does nothing where there is no setuid: the servers' Debian
// packages are Unix programs, and the tests skip without them.
func runAs(*exec.Cmd, *runUser) {}
