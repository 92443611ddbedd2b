//go:build !unix

package cli

import (
	"context"
	"errors"
	"os"
)

// EnvTokenFile names the token file a supervised child re-reads.
const EnvTokenFile = "LATCH_TOKEN_FILE"

func parseSignal(string) (os.Signal, error) {
	return nil, errors.New("--signal: this system has no Unix signals; use --restart")
}

func (a *App) supervise(context.Context, *execOptions, string) error {
	return usageError(errors.New("supervisor mode (--restart, --signal) needs a Unix system here; use latch agent --token-file"))
}
