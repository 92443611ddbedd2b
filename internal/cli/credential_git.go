package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// gitCredentialOptions are the flags of `latch credential git`.
type gitCredentialOptions struct {
	url      string // the git server this helper answers for
	username string
}

func (a *App) newGitCredentialCmd() *cobra.Command {
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
			return a.gitCredential(cmd.Context(), o, args[0])
		},
	}
	c.Flags().StringVar(&o.url, "url", "", "the git server `URL` this helper answers for (default: the API URL)")
	c.Flags().StringVar(&o.username, "username", "oauth2", "the username to give git with the token")
	return c
}

func (a *App) gitCredential(ctx context.Context, o *gitCredentialOptions, op string) error {
	in, err := readHelperInput(a.Stdin)
	if err != nil {
		return usageError(err)
	}
	switch op {
	case "store":
		return nil
	case "get", "erase":
	default:
		return usageError(fmt.Errorf("unknown operation %q: want get, store or erase", op))
	}
	bound := o.url
	if bound == "" {
		if bound, err = a.APIURL(ctx); err != nil {
			return err
		}
	}
	if !sameOrigin(bound, in.get("protocol"), in.get("host")) {
		return nil // not ours: git asks its other helpers
	}
	if op == "erase" {
		secret := in.get("password")
		if in.get("authtype") != "" {
			secret = in.get("credential")
		}
		return a.markRejected(ctx, secret)
	}
	tok, err := a.helperToken(ctx)
	if err != nil {
		return err
	}
	if !safeValue(tok.AccessToken) {
		return errors.New("the access token cannot be written as a git credential")
	}
	var b strings.Builder
	if in.has("capability[]", "authtype") {
		b.WriteString("capability[]=authtype\nauthtype=Bearer\ncredential=" + tok.AccessToken + "\nephemeral=1\n")
	} else {
		user := o.username
		if u := in.get("username"); u != "" && safeValue(u) {
			user = u
		}
		b.WriteString("username=" + user + "\npassword=" + tok.AccessToken + "\n")
	}
	if !tok.Expiry.IsZero() {
		b.WriteString("password_expiry_utc=" + strconv.FormatInt(tok.Expiry.Unix(), 10) + "\n")
	}
	_, err = fmt.Fprint(a.Stdout, b.String())
	return err
}

// sameOrigin reports whether git's protocol and host (host[:port]) are
// the origin of bound.
func sameOrigin(bound, protocol, host string) bool {
	u, err := url.Parse(bound)
	if err != nil || protocol == "" || host == "" {
		return false
	}
	want := u.Host
	switch {
	case u.Scheme == "https" && u.Port() == "443", u.Scheme == "http" && u.Port() == "80":
		want = u.Hostname()
	}
	h := strings.ToLower(host)
	if (protocol == "https" && strings.HasSuffix(h, ":443")) || (protocol == "http" && strings.HasSuffix(h, ":80")) {
		h = h[:strings.LastIndexByte(h, ':')]
	}
	return strings.EqualFold(u.Scheme, protocol) && strings.EqualFold(want, h)
}
