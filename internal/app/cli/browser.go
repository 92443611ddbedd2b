package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// browserOpener returns an authcode OpenURL that prints the URL and opens
// it with $BROWSER when set, as gh does, else the system opener, then
// prints waiting (what login waits for, so that a server that shows an
// error page instead of redirecting back is not a silent wait). A browser
// that cannot be started is reported, not fatal: the printed URL still
// works. It returns when the browser command exits or ctx is done; the
// browser is never killed.
func (a *App) browserOpener(waiting string) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error { return a.openURL(ctx, u, waiting) }
}

func (a *App) openURL(ctx context.Context, u, waiting string) error {
	fmt.Fprintf(a.Stderr, "Open this URL in your browser to log in:\n  %s\n", u)
	argv := strings.Fields(a.Getenv("BROWSER"))
	quiet := false
	if len(argv) == 0 {
		// The system opener's own chatter ("www-browser: not found" …)
		// says nothing a person can act on; the URL is printed above.
		argv, quiet = systemOpener(), true
	}
	if len(argv) == 0 {
		fmt.Fprintln(a.Stderr, waiting)
		return nil
	}
	cmd := exec.Command(argv[0], append(argv[1:], u)...)
	if f, ok := a.Stderr.(*os.File); ok && !quiet {
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(a.Stderr, "Could not start the browser (%s); open the URL yourself.\n", err)
		fmt.Fprintln(a.Stderr, waiting)
		return nil
	}
	fmt.Fprintln(a.Stderr, waiting)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(a.Stderr, "The browser command %s exited: %s; open the URL yourself.\n", argv[0], err)
		}
	case <-ctx.Done():
	}
	return nil
}

func systemOpener() []string {
	switch runtime.GOOS {
	case "darwin":
		return []string{"open"}
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler"}
	}
	if _, err := exec.LookPath("xdg-open"); err == nil {
		return []string{"xdg-open"}
	}
	return nil
}
