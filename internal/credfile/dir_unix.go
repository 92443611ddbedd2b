//go:build unix

package credfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func checkDir(dir string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("use directory %s: owned by uid %d, not by you (uid %d); remove it or fix its owner", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("use directory %s: mode %04o lets other users change it; run `chmod 700 %s`", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
