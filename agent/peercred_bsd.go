//go:build darwin || freebsd

package agent

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials says whether this system tells a Unix socket's peer.
const peerCredentials = true

// peerUID returns the uid of the process at the other end of c
// (LOCAL_PEERCRED, unix(4)).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Xucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	return int(cred.Uid), nil
}
