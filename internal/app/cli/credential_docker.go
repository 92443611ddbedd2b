package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/app/config"
	"github.com/latchdev/latch/internal/app/fastcred"
)

// DockerHelperName is what Docker runs for "credHelpers": {"REGISTRY": "latch"}:
// docker-credential-latch, the small helper (fastcred.Docker), or latch
// under that name.
const DockerHelperName = fastcred.DockerName

// errDockerNotFound is the docker-credential-helpers protocol's answer
// for a registry it has no credential for.
const errDockerNotFound = "credentials not found in native keychain"

// DefaultDockerUsername goes with an OAuth access token as the password,
// as Google's registries name it.
const DefaultDockerUsername = fastcred.DefaultDockerUsername

func (a *App) newDockerCredentialCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "docker get|store|erase|list",
		Short: "A Docker credential helper that answers with a fresh access token",
		Long: `A Docker credential helper (the docker-credential-helpers protocol). Docker
runs it as docker-credential-latch, for the registries latch auth
setup-docker mapped to a latch login.

  get    reads a registry on stdin, answers {"ServerURL","Username","Secret"}
         with the login's access token, refreshed first when needed
  list   the mapped registries and their usernames
  erase  (docker logout) unmaps the registry; the latch login stays
  store  (docker login) is refused: latch keeps the login`,
		Example: `  latch auth setup-docker registry.example.com --host https://auth.example.com
  echo registry.example.com | docker-credential-latch get`,
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{"get", "store", "erase", "list", "version"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.dockerCredential(cmd.Context(), args[0])
		},
	}
}

// registryKey normalizes how Docker names a registry (fastcred.RegistryKey).
func registryKey(s string) string { return fastcred.RegistryKey(s) }

func (a *App) dockerCredential(ctx context.Context, op string) error {
	switch op {
	case "version":
		fmt.Fprintln(a.Stdout, "latch docker credential helper")
		return nil
	case "list":
		cf, err := a.config()
		if err != nil {
			return err
		}
		out := map[string]string{}
		for reg, r := range cf.Docker {
			out[reg] = dockerUser(r)
		}
		return json.NewEncoder(a.Stdout).Encode(out)
	case "store":
		_, _ = io.Copy(io.Discard, io.LimitReader(a.Stdin, maxHelperInput))
		return errors.New("latch keeps this registry's login: use `latch auth login`, not docker login")
	case "get", "erase":
	default:
		return usageError(fmt.Errorf("unknown operation %q: want get, store, erase or list", op))
	}
	b, err := io.ReadAll(io.LimitReader(a.Stdin, maxHelperInput))
	if err != nil {
		return err
	}
	server := strings.TrimSpace(string(b))
	if op == "get" {
		u := server
		if !strings.Contains(u, "://") {
			u = "https://" + u // Docker's default for a registry
		}
		if err := tokenDestination("registry", u); err != nil {
			return err
		}
	}
	key := registryKey(server)
	cf, err := a.config()
	if err != nil {
		return err
	}
	r := cf.Docker[key]
	if op == "erase" {
		if r == nil {
			return nil
		}
		return a.updateConfig(ctx, func(f *config.File) error {
			delete(f.Docker, key)
			return nil
		})
	}
	if r == nil {
		// The protocol's own words, which Docker recognizes.
		fmt.Fprintln(a.Stdout, errDockerNotFound)
		return &ExitError{Code: ExitAPI, Silent: true}
	}
	if err := a.root.PersistentFlags().Set("host", r.Host); err != nil {
		return err
	}
	// The account it was set up for, the default one too: a later
	// `auth switch` does not change whom Docker acts for.
	if err := a.root.PersistentFlags().Set("org", r.Org); err != nil {
		return err
	}
	tok, err := a.helperToken(ctx)
	if err != nil {
		return err
	}
	return fastcred.WriteDocker(a.Stdout, server, dockerUser(r), tok.AccessToken)
}

func dockerUser(r *config.DockerRegistry) string {
	return fastcred.DockerUser(r.Username)
}
