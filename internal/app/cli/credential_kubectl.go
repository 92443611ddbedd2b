package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/app/fastcred"
)

// ExecCredential API versions (client.authentication.k8s.io).
const (
	execCredentialV1      = fastcred.ExecCredentialV1
	execCredentialV1beta1 = fastcred.ExecCredentialV1beta1
)

type kubectlCredentialOptions struct {
	apiVersion string
}

// newKubectlCredentialCmd returns the command; runF, when set, gets the parsed options
// instead of running it (for tests, as gh does).
func (a *App) newKubectlCredentialCmd(runF func(*kubectlCredentialOptions) error) *cobra.Command {
	o := &kubectlCredentialOptions{}
	c := &cobra.Command{
		Use:   "kubectl",
		Short: "A kubectl exec credential plugin that prints a fresh access token",
		Long: `A client-go exec credential plugin: prints an ExecCredential with the
login's access token, refreshed first when needed, and its expiry, so
kubectl asks again before latch would refresh. It answers in the API
version KUBERNETES_EXEC_INFO asks for (client.authentication.k8s.io/v1 or
v1beta1), else --api-version. latch auth setup-kubectl installs it.`,
		Example: `  latch auth setup-kubectl --context prod --host https://auth.example.com
  KUBERNETES_EXEC_INFO='{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}' latch credential kubectl`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return a.kubectlCredential(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.apiVersion, "api-version", execCredentialV1, "ExecCredential API version when KUBERNETES_EXEC_INFO does not say")
	return c
}

func (a *App) kubectlCredential(ctx context.Context, o *kubectlCredentialOptions) error {
	version := o.apiVersion
	if info := a.Getenv("KUBERNETES_EXEC_INFO"); info != "" {
		var ec struct {
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal([]byte(info), &ec); err != nil {
			return usageError(fmt.Errorf("KUBERNETES_EXEC_INFO is not an ExecCredential: %w", err))
		}
		version = ec.APIVersion
	}
	if version != execCredentialV1 && version != execCredentialV1beta1 {
		return usageError(fmt.Errorf("ExecCredential version %q: latch speaks %s and %s", version, execCredentialV1, execCredentialV1beta1))
	}
	tok, err := a.helperToken(ctx)
	if err != nil {
		return err
	}
	return fastcred.WriteExecCredential(a.Stdout, version, tok)
}
