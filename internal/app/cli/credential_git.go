package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/internal/app/gitcred"
)

// gitCredentialOptions are the flags of `latch credential git`.
type gitCredentialOptions struct {
	url      string // the git server this helper answers for
	username string
	op       string // get, store or erase
}

// newGitCredentialCmd returns the command; runF, when set, gets the parsed
// options instead of running it (for tests, as gh does).
func (a *App) newGitCredentialCmd(runF func(*gitCredentialOptions) error) *cobra.Command {
	o := &gitCredentialOptions{}
	c := &cobra.Command{
		Use:   "git get|store|erase",
		Short: "A git credential helper that answers with a fresh access token",
		Long: `A git credential helper (gitcredentials(7), git-credential(1)). git runs it;
latch auth setup-git installs it for one git server.

  get    answers username and password (the access token) with
         password_expiry_utc, so git never keeps it past its expiry; when
         git offers capability[]=authtype (git 2.46 and later), answers
         authtype=Bearer and credential instead, marked ephemeral
  erase  the server rejected the token: the next get refreshes it (through
         the same lock as every latch command) instead of returning it again
  store  changes nothing: latch already keeps the login

It answers only for the origin of --url (default: the host's API URL), and
says nothing for any other server, so git asks its other helpers.`,
		Example: `  git config --global credential.https://git.example.com.helper '!latch --host https://auth.example.com credential git --url https://git.example.com'
  printf 'protocol=https\nhost=git.example.com\n\n' | latch credential git get`,
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{"get", "store", "erase"},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.op = args[0]
			if runF != nil {
				return runF(o)
			}
			return a.gitCredential(cmd.Context(), o, o.op)
		},
	}
	c.Flags().StringVar(&o.url, "url", "", "the git server `URL` this helper answers for (default: the API URL)")
	c.Flags().StringVar(&o.username, "username", "oauth2", "the username to give git with the token")
	return c
}

func (a *App) gitCredential(ctx context.Context, o *gitCredentialOptions, op string) error {
	in, err := gitcred.ReadRequest(a.Stdin)
	if err != nil {
		return usageError(err)
	}
	if err := gitcred.CheckOp(op); err != nil {
		return usageError(err)
	}
	if op == "store" {
		return nil // Route's answer for any bound: no API URL to look up
	}
	bound := o.url
	if bound == "" {
		if bound, err = a.APIURL(ctx); err != nil {
			return err
		}
	}
	act, err := gitcred.Route(op, in, bound)
	if err != nil {
		// Only the bound can be wrong now: say why in latch's words.
		if err := tokenDestination("--url", bound); err != nil {
			return err
		}
		return usageError(err)
	}
	switch act {
	case gitcred.Ignore:
		return nil
	case gitcred.NotOurs:
		// git asks its other helpers. A person trying it by hand (or
		// --debug) is told why nothing came back.
		if a.canPrompt() || a.debug() {
			fmt.Fprintf(a.Stderr, "latch credential git: no answer: this helper answers only for %s (--url), and the request is for another server\n", origin(bound))
		}
		return nil
	case gitcred.Erase:
		return a.markRejected(ctx, in.Erased())
	}
	tok, err := a.helperToken(ctx)
	if err != nil {
		return err
	}
	answer, err := in.Answer(tok.AccessToken, tok.Expiry, o.username)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(a.Stdout, answer)
	return err
}
