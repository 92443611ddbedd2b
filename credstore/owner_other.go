//go:build !unix

package credstore

import "io/fs"

func ownedBy(fs.FileInfo, int) bool { return true }
