package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// errPortTaken is what a server's start returns when the server could not
// bind its port: the port was free when chosen and taken since, so the
// caller chooses another.
var errPortTaken = errors.New("address already in use")

// startTimeout bounds how long a server may take to answer after starting;
// PostgreSQL and InfluxDB take about a second on a busy machine.
const startTimeout = 30 * time.Second

// server is what the servers here share: a process that a test may stop
// and start again, and the check that it is ready.
type server struct {
	proc  *process
	check func() error
}

// Start starts the stopped server again, on the same port and data, and
// waits until it is ready.
func (s *server) Start(t testing.TB) {
	t.Helper()
	if err := s.proc.start(s.check); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the server and waits for it to exit.
func (s *server) Stop(t testing.TB) {
	t.Helper()
	s.proc.stop()
}

// process is one server this package started.
type process struct {
	argv    []string
	dir     string              // the working directory
	logPath string              // stdout and stderr, appended
	cred    *syscall.Credential // run as this user when set
	detach  bool                // outlive this process (for scripts)

	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the server and waits until ready returns nil. It returns an
// error wrapping errPortTaken when the server exits saying its address is
// in use, and the server's log with any other failure.
func (p *process) start(ready func() error) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if p.detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		// A test binary that is killed (a timeout) takes its servers along.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name(), err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			p.cmd = nil
			log := p.logSince(logStart)
			if strings.Contains(strings.ToLower(log), "address already in use") {
				return fmt.Errorf("%s: %w", p.name(), errPortTaken)
			}
			return fmt.Errorf("%s exited (%v) before it was ready; its log:\n%s", p.name(), cmd.ProcessState, log)
		case <-time.After(20 * time.Millisecond):
		}
		if ready() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("%s did not answer within %v; its log:\n%s", p.name(), startTimeout, p.logSince(logStart))
		}
	}
}

// stop interrupts the server, which every server here takes as a fast
// clean shutdown, and kills it if it has not exited after 10 s.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

func (p *process) name() string { return filepath.Base(p.argv[0]) }

// pidPath is where a detached server's process id is kept for stopDetached.
func pidPath(dir, name string) string { return filepath.Join(dir, name+".pid") }

// writePID records a detached server's process id in dir.
func (p *process) writePID(dir string) error {
	return os.WriteFile(pidPath(dir, p.name()), []byte(strconv.Itoa(p.cmd.Process.Pid)+"\n"), 0o644)
}

func (p *process) logSince(offset int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(bytes.TrimSpace(b[offset:]))
}

// stopDetached stops the server whose process id name.pid in dir holds, as
// process.stop does, and removes the file. With no file it does nothing.
func stopDetached(dir, name string) error {
	path := pidPath(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGINT)
		for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
	return os.Remove(path)
}

// alive reports whether process pid runs: it exists and is not a zombie
// waiting for a parent that does not reap (as in a container whose first
// process is not an init).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// pickPort is FreePort, except in the test of onFreePorts.
var pickPort = FreePort

// onFreePorts calls start with n free ports, and again with others while it
// fails because a port was taken in between: a few times, since each try
// takes fresh random ports.
func onFreePorts(n int, start func(ports []int) error) error {
	var err error
	for range 5 {
		ports := make([]int, 0, n)
		for len(ports) < n {
			p, err := pickPort()
			if err != nil {
				return err
			}
			if !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
		if err = start(ports); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}
