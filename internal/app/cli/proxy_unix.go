//go:build unix

package cli

import (
	"net"
	"syscall"
)

// listenUnixPrivate listens on a Unix socket created with mode 0600, so
// no other user can connect (the umask is set around the bind).
func listenUnixPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	return ln, err
}
