//go:build unix

package filestore

import (
	"errors"
	"io/fs"
	"syscall"
)

// modeBits says whether Unix permission bits mean what they say here.
const modeBits = true

const oNoFollow = syscall.O_NOFOLLOW

func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
