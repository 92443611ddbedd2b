//go:build unix

package testdb

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd run as u (nil: as this process).
func runAs(cmd *exec.Cmd, u *runUser) {
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}
	}
}
