// Command docker-credential-latch is latch's Docker credential helper
// (docker-credential-helpers protocol), small so that it starts fast: it
// answers get for a registry latch auth setup-docker mapped, from a valid
// stored token, by itself, and hands everything else to `latch
// credential docker` (see fastcred.Docker).
package main

import (
	"context"
	"os"

	"github.com/latchdev/latch/internal/app/fastcred"
)

func main() {
	os.Exit(fastcred.Docker(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
