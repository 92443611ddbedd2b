//go:build !unix

package filelock

import "io/fs"

func checkDir(string, fs.FileInfo) error { return nil }
