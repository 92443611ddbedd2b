// Command agentidle measures an idle latch agent: one identity, three
// sinks (a token file, a template, a Unix socket), an access token that
// lasts an hour, nobody calling. It prints the agent's resident memory
// and the CPU time it used, extrapolated to an hour (Linux /proc).
//
//	go run ./bench/agentidle -duration 60s
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch/oauthtest"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

func main() {
	d := flag.Duration("duration", 60*time.Second, "how long to watch the idle agent")
	flag.Parse()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	if err := run(*d); err != nil {
		fmt.Fprintln(os.Stderr, "agentidle:", err)
		os.Exit(1)
	}
}

func run(d time.Duration) error {
	tmp, err := os.MkdirTemp("", "latch-agentidle-")
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
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true, AccessTTL: time.Hour})
	defer srv.Close()
	env := append(os.Environ(), "HOME="+tmp, "LATCH_CONFIG_DIR="+filepath.Join(tmp, "config"), "LATCH_CREDENTIAL_STORE=file",
		"LATCH_HOST="+srv.URL, "BROWSER="+devBin+" browse", "LATCH_DEBUG=", "LATCH_TOKEN=")
	login := exec.Command(latchBin, "auth", "login")
	login.Env = env
	if out, err := login.CombinedOutput(); err != nil {
		return fmt.Errorf("latch auth login: %v\n%s", err, out)
	}
	tmpl := filepath.Join(tmp, "netrc.tmpl")
	if err := os.WriteFile(tmpl, []byte("machine api login x password {{.AccessToken}}\n"), 0o600); err != nil {
		return err
	}
	file := filepath.Join(tmp, "token")
	agent := exec.Command(latchBin, "agent", "--token-file", file, "--template", tmpl+"="+filepath.Join(tmp, "netrc"),
		"--socket", filepath.Join(tmp, "agent.sock"))
	agent.Env = env
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Kill(); _ = agent.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent never wrote its token file")
		}
	}
	time.Sleep(2 * time.Second) // past start-up
	pid := agent.Process.Pid
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(d)
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rss, hwm, err := memory(pid)
	if err != nil {
		return err
	}
	used := cpu1 - cpu0
	perHour := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(time.Hour) / float64(elapsed)).Round(time.Millisecond)
	}
	cpu := fmt.Sprintf("%s, %s per hour", used, perHour(used))
	if used == 0 {
		// /proc counts in ticks of 10 ms: none means less than one.
		cpu = fmt.Sprintf("under one 10 ms tick, under %s per hour", perHour(time.Second/clockTicks))
	}
	fmt.Printf("| idle latch agent, 1 identity, 3 sinks | %s watched | RSS %.1f MiB (peak %.1f MiB) | CPU %s |\n",
		elapsed.Round(time.Second), float64(rss)/1024, float64(hwm)/1024, cpu)
	return nil
}

// cpuTime is the process's user and system time (/proc/PID/stat fields
// 14 and 15, proc(5)).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from
	// after its closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// memory returns VmRSS and VmHWM in KiB (/proc/PID/status).
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm, nil
}
