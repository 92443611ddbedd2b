// Command kube-credential-latch is latch's kubectl exec credential
// plugin, small so that it starts fast. It takes latch's arguments
// (--host H --org O credential kubectl), answers from a valid stored
// token by itself and hands everything else to latch with the same
// arguments (see fastcred.Kube). latch auth setup-kubectl writes it into
// the kubeconfig when it is installed next to latch.
package main

import (
	"context"
	"os"

	"github.com/latchdev/latch/internal/app/fastcred"
)

func main() {
	os.Exit(fastcred.Kube(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
