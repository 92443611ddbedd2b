//go:build unix

package filestore

import (
	"github.com/latchdev/latch/storekit"

	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashSize = 200 << 10

func TestMain(m *testing.M) {
	if dir := os.Getenv("FILESTORE_CRASH_WRITER"); dir != "" {
		crashWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// crashWriter saves ever newer generations until killed, saying "ready"
// as it starts.
func crashWriter(dir string) {
	s := New(dir)
	var g uint64
	if t, err := s.Load(ctx, key); err == nil {
		g = t.Generation
	}
	os.Stdout.WriteString("ready\n")
	for {
		g++
		if err := storekit.Put(ctx, s, key, gen(g, crashSize)); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
	}
}

// TestCrashSafety kills a writer with SIGKILL at random moments and checks
// that the store always holds a whole generation, never an older one than
// before, never an error or a torn file (LESSONS.md 14).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is slow")
	}
	dir := t.TempDir()
	s := New(dir)
	if err := storekit.Put(ctx, s, key, gen(1, crashSize)); err != nil {
		t.Fatal(err)
	}
	start := time.Now() // a save over an existing set, as the writer's are
	if err := storekit.Put(ctx, s, key, gen(1, crashSize)); err != nil {
		t.Fatal(err)
	}
	// Kill within about two saves of the writer's start, so that most
	// kills land inside a write. The parent's save cost stands for the
	// child's: same binary, same instrumentation.
	window := 2*time.Since(start) + 5*time.Millisecond
	var last uint64 = 1
	kills, moved := 0, 0
	for kills < 200 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FILESTORE_CRASH_WRITER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("writer: %q", line)
		}
		time.Sleep(rand.N(window))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++

		got, err := s.Load(ctx, key)
		if err != nil {
			t.Fatalf("kill %d: Load: %v", kills, err)
		}
		if !equal(got, gen(got.Generation, crashSize)) {
			t.Fatalf("kill %d: generation %d is torn", kills, got.Generation)
		}
		if got.Generation < last {
			t.Fatalf("kill %d: went back from generation %d to %d", kills, last, got.Generation)
		}
		if got.Generation > last {
			moved++
		}
		last = got.Generation
	}
	if moved < kills/4 {
		t.Fatalf("the store moved on in only %d of %d runs; the kills did not hit writes", moved, kills)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	t.Logf("window %s: %d kills, %d moved the store on, %d generations, %d orphaned temp files", window, kills, moved, last, len(tmps))
	if _, err := s.List(ctx); err != nil {
		t.Fatalf("List after crashes: %v", err)
	}
}
