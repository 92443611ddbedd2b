// Command chaos runs latch processes in a loop against the dev server
// (1 s access tokens) while it kills them and injects token-endpoint
// faults, against a strict server and one with a rotation grace period,
// and prints what it counted as README table rows.
//
//	go run ./bench/chaos -duration 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/latchdev/latch/internal/app/chaos"
)

func main() {
	d := flag.Duration("duration", 10*time.Minute, "how long each of the two runs lasts")
	workers := flag.Int("workers", 16, "concurrent latch processes")
	flag.Parse()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the server logs each grant it rejects
	if err := run(*d, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(d time.Duration, workers int) error {
	tmp, err := os.MkdirTemp("", "latch-chaos-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	latchBin, devBin := filepath.Join(tmp, "latch"), filepath.Join(tmp, "latch-dev")
	for bin, pkg := range map[string]string{latchBin: "./cmd/latch", devBin: "./cmd/latch-dev"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	fmt.Printf("Chaos: %d latch processes in a loop for %s per server, 1 s access tokens; a third of the\n", workers, d)
	fmt.Printf("processes get SIGKILL, SIGINT or SIGTERM within 400 ms; a token-endpoint fault every 100-400 ms.\n\n")
	fmt.Println("| server | time | commands | refreshes | exit codes | answers lost (dropped) | SIGKILLs | reuse detected | sessions lost | torn files | hung | token leaks |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	bad := false
	for _, srv := range []struct {
		name  string
		grace time.Duration
	}{{"strict", 0}, {"grace 60s", time.Minute}} {
		rep, err := chaos.Run(context.Background(), chaos.Options{Latch: latchBin, Env: []string{"BROWSER=" + devBin + " browse"},
			Workers: workers, Duration: d, Grace: srv.grace, Agent: true})
		if err != nil {
			return err
		}
		fmt.Print(rep.Markdown(srv.name))
		if !rep.Explained(srv.grace > 0) || rep.Torn+rep.Hung+rep.Leaks > 0 || len(rep.Unexpected) > 0 {
			bad = true
			fmt.Fprintf(os.Stderr, "%s: a promise did not hold: %+v\n", srv.name, rep)
		}
	}
	if bad {
		return fmt.Errorf("a promise did not hold")
	}
	return nil
}
