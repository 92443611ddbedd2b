package filelock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

var key = latch.Key{Issuer: "https://issuer.example", ClientID: "cli", Account: "acme"}

// TestMain doubles as a lock holder for the cross-process tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FILELOCK_TEST_HOLD"); dir != "" {
		unlock, err := Locker{Dir: dir}.Lock(context.Background(), key)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // hold until stdin closes
		unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInChild starts a process holding key's lock in dir; release ends it.
func holdInChild(t *testing.T, dir string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FILELOCK_TEST_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: got %q, want locked", line)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func TestLockTimeoutAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	holdInChild(t, dir)
	l := Locker{Dir: dir, Timeout: 200 * time.Millisecond}
	_, err := l.Lock(context.Background(), key)
	if !errors.Is(err, latch.ErrLockTimeout) {
		t.Fatalf("got %v, want ErrLockTimeout", err)
	}
	var te *TimeoutError
	if !errors.As(err, &te) || te.Path != l.Path(key) {
		t.Fatalf("got %#v, want *TimeoutError for %s", err, l.Path(key))
	}
	for _, want := range []string{l.Path(key), "if no other run of this program is going", "fuser"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestLockWaitsForOtherProcess(t *testing.T) {
	dir := t.TempDir()
	release := holdInChild(t, dir)
	got := make(chan error, 1)
	go func() {
		unlock, err := Locker{Dir: dir, Timeout: time.Minute}.Lock(context.Background(), key)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if _, err := os.Stat(Locker{Dir: dir}.Path(key)); err != nil {
		t.Fatalf("lock file must survive: %v", err)
	}
}

func TestLockHonoursCtx(t *testing.T) {
	dir := t.TempDir()
	holdInChild(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := Locker{Dir: dir, Timeout: time.Hour}.Lock(ctx, key)
	if !errors.Is(err, context.Canceled) || errors.Is(err, latch.ErrLockTimeout) {
		t.Fatalf("got %v, want context.Canceled and not ErrLockTimeout", err)
	}
}

func TestLockExcludesGoroutines(t *testing.T) {
	dir := t.TempDir()
	var (
		wg     sync.WaitGroup
		inside int // guarded by the lock under test; -race checks it
		max    int
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				// A fresh Locker each time: exclusion must not depend on sharing one.
				unlock, err := Locker{Dir: dir}.Lock(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				inside++
				if inside > max {
					max = inside
				}
				inside--
				unlock()
				unlock() // extra calls do nothing
			}
		}()
	}
	wg.Wait()
	if max != 1 {
		t.Fatalf("got %d holders at once, want 1", max)
	}
}

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	l := Locker{Dir: dir}
	release := holdInChild(t, dir)
	if _, ok, err := l.TryLock(key); ok || err != nil {
		t.Fatalf("TryLock while another process holds it: ok %v, %v; want false, nil", ok, err)
	}
	release()
	unlock, ok, err := l.TryLock(key)
	if !ok || err != nil {
		t.Fatalf("TryLock of a free lock: ok %v, %v", ok, err)
	}
	if _, ok, _ := l.TryLock(key); ok {
		t.Error("a second TryLock in this process took the lock it holds")
	}
	unlock()
	if unlock, ok, _ := l.TryLock(key); !ok {
		t.Error("TryLock after unlock failed")
	} else {
		unlock()
	}
}

// A Wait on another process's lock returns when that process lets go,
// having waited; one that gives up first says why, and what it left
// blocked lets go too: this process can take the lock afterwards.
func TestWaitAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	release := holdInChild(t, dir)
	l := Locker{Dir: dir, Timeout: 100 * time.Millisecond}
	if waited, err := l.Wait(context.Background(), key); !waited || !errors.Is(err, latch.ErrLockTimeout) {
		t.Fatalf("Wait on a held lock: waited %v, %v; want true and ErrLockTimeout", waited, err)
	}
	got := make(chan error, 1)
	go func() {
		waited, err := Locker{Dir: dir, Timeout: time.Minute}.Wait(context.Background(), key)
		if err == nil && !waited {
			err = errors.New("Wait said the lock was free")
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("Wait until the holder let go: %v", err)
	}
	unlock, err := Locker{Dir: dir, Timeout: 5 * time.Second}.Lock(context.Background(), key)
	if err != nil {
		t.Fatalf("Lock after a Wait gave up and the holder let go: %v", err)
	}
	unlock()
	if waited, err := l.Wait(context.Background(), key); waited || err != nil {
		t.Fatalf("Wait on a free lock: waited %v, %v; want false, nil", waited, err)
	}
}
