package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one program the sandbox started: enough to find it again from
// another kup process (`kup sandbox down`) and to check it is still the
// program we started before signalling it (pids are reused).
type Process struct {
	Name    string   `json:"name"`
	PID     int      `json:"pid"`
	Binary  string   `json:"binary"`
	Args    []string `json:"args"`
	Log     string   `json:"log"`
	Version string   `json:"version,omitempty"`

	cmd    *exec.Cmd
	exited chan struct{} // closed when a process we own has been reaped
}

// startProcess runs bin with env in its own session (so a Ctrl-C in the terminal
// that ran `kup sandbox up` does not reach it, and the whole group can be
// signalled at once), logging to logPath. With dieWithParent the kernel
// kills it if the starting process dies, so a killed test leaves nothing
// behind.
func startProcess(name, bin string, args, env []string, logPath string, dieWithParent bool) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log for %s: %w", name, err)
	}
	defer logf.Close()
	var gogc string // what a reader of the log wants to know of env
	for _, e := range env {
		if strings.HasPrefix(e, "GOGC=") {
			gogc = e + " "
		}
	}
	fmt.Fprintf(logf, "\n==== %s: %s%s %s\n", time.Now().Format(time.RFC3339), gogc, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if dieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, Binary: bin, Args: args, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Alive reports whether the process is still running as the program we
// started (not a zombie, not a reused pid).
func (p *Process) Alive() bool {
	if p == nil || p.PID <= 0 {
		return false
	}
	if p.exited != nil {
		select {
		case <-p.exited:
			return false
		default:
		}
	}
	return pidRuns(p.PID, p.Binary)
}

// pidRuns is true when pid exists, is not a zombie and runs binary.
func pidRuns(pid int, binary string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state is the field after the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return false
	}
	if binary == "" {
		return true
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		// Not ours to inspect (another user): compare the command line.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && bytes.HasPrefix(cmdline, []byte(binary))
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe == binary || filepath.Base(exe) == filepath.Base(binary)
}

// Stop signals the process group with SIGTERM, waits up to grace for the
// process to go, then SIGKILLs the group. It returns only once the process
// is gone, because the next control-plane binary cannot bind the same ports
// (or open etcd's data directory) while the old one is still shutting down.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGTERM)
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	if p.waitGone(ctx, grace) {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	if p.waitGone(ctx, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) is still running after SIGKILL", p.Name, p.PID)
}

func (p *Process) waitGone(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return true
		}
		select {
		case <-ctx.Done():
			return !p.Alive()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !p.Alive()
}

// exitedEarly returns an error naming the process and its log if it died,
// so a start-up failure is reported as itself and not as a readiness timeout.
func (p *Process) exitedEarly() error {
	if p.Alive() {
		return nil
	}
	return fmt.Errorf("%s exited during start-up: %s (log: %s)", p.Name, tailFile(p.Log, 3), p.Log)
}

// tailFile returns the last n non-empty lines of a log, joined, for error
// messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
		if len(lines[i]) > 300 {
			lines[i] = lines[i][:300] + "…"
		}
	}
	return strings.Join(lines, " | ")
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, chosen below
// the kernel's ephemeral range (net.ipv4.ip_local_port_range, usually
// 32768–60999). A port from inside that range can be taken as the source
// port of some outgoing connection while a component restarts, and the
// restarted component then cannot bind it.
func freePorts(n int) ([]int, error) {
	lo, hi := 10000, ephemeralLow()-1
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n && tries < 2000; tries++ {
		port := lo + mrand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d free ports between %d and %d on 127.0.0.1", len(ports), lo, hi)
	}
	return ports, nil
}

// ephemeralLow is the bottom of the kernel's ephemeral port range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				return v
			}
		}
	}
	return 32768
}

// waitPortFree waits up to d for port to become bindable: a component that
// just exited may leave its socket briefly held.
func waitPortFree(ctx context.Context, port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := portFree(port)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// portFree reports whether 127.0.0.1:port can be bound right now.
func portFree(port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) && errors.Is(se.Err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on 127.0.0.1 is in use (by another sandbox or program): stop it or let kup choose ports", port)
		}
		return fmt.Errorf("port %d on 127.0.0.1: %w", port, err)
	}
	return l.Close()
}

// Memory returns the process's resident set size and its peak (VmRSS and
// VmHWM from /proc), in bytes; zeros when it cannot be read.
func (p *Process) Memory() (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}
