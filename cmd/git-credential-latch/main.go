// Command git-credential-latch is latch's git credential helper, small so
// that it starts fast: git runs a helper for nearly every request. It
// answers from a valid stored token by itself and hands everything else
// to `latch credential git` (see gitcred.Helper). latch auth setup-git
// uses it when it is installed next to latch.
//
//	git config --global credential.https://git.example.com.helper \
//	  '!git-credential-latch --host https://auth.example.com --url https://git.example.com'
package main

import (
	"context"
	"os"

	"github.com/latchdev/latch/internal/app/gitcred"
)

func main() {
	os.Exit(gitcred.Helper(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
