//go:build !unix

package cli

import (
	"errors"
	"net"
)

func listenUnixPrivate(string) (net.Listener, error) {
	return nil, errors.New("unix sockets are not supported here; listen on 127.0.0.1")
}
