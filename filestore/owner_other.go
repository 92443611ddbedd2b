//go:build !unix

package filestore

import (
	"errors"
	"io/fs"
	"syscall"
)

// modeBits is false where permissions are ACLs (Windows): the per-user
// profile directory is private by default and Go's mode bits say nothing.
const modeBits = false

const oNoFollow = 0

func owner(fs.FileInfo) (int, bool) { return 0, false }

func diskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
