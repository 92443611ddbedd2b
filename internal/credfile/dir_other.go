//go:build !unix

package credfile

import "io/fs"

func checkDir(string, fs.FileInfo) error { return nil }
