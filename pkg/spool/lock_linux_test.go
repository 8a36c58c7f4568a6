package spool_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/metricgate/metricgate/pkg/spool"
)

// holderEnv, set to a directory, makes the test binary a lock holder: it
// opens the spool there, appends holderLine, prints "held" and waits on
// its standard input until it is killed.
const holderEnv = "METRICGATE_SPOOL_TEST_HOLDER"

const holderLine = "m,host=holder x=1i 1\n"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		os.Exit(holdSpool(dir))
	}
	os.Exit(m.Run())
}

func holdSpool(dir string) int {
	s, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Append([]byte(holderLine), 1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	return 0
}

// checkLocked checks that err is the refusal of a second Open of dir while
// process pid holds it.
func checkLocked(t *testing.T, err error, dir string, pid int) {
	t.Helper()
	if !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("second Open of %s: got %v, want ErrLocked", dir, err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "process "+strconv.Itoa(pid)) {
		t.Errorf("got error %q, want one naming %s and process %d", msg, dir, pid)
	}
}

// TestLockInProcess opens a directory twice in one process: the second
// Open is refused at once and touches nothing, the first goes on working,
// and once it is closed the directory opens again with every record.
func TestLockInProcess(t *testing.T) {
	dir := t.TempDir()
	first := open(t, spool.Options{Dir: dir, SegmentSize: 256})
	var want []string
	for i := range 10 {
		if err := first.Append(line(i), 1); err != nil {
			t.Fatal(err)
		}
		want = append(want, string(line(i)))
	}

	second, err := spool.Open(spool.Options{Dir: dir, SegmentSize: 256})
	if err == nil {
		second.Close()
	}
	checkLocked(t, err, dir, os.Getpid())

	for i := 10; i < 20; i++ {
		if err := first.Append(line(i), 1); err != nil {
			t.Fatalf("append after the refused Open: %v", err)
		}
		want = append(want, string(line(i)))
	}
	if got := drain(t, first, len(want), false); strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("read %q, want the 20 lines appended in order", got)
	}
	checkDrained(t, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := open(t, spool.Options{Dir: dir, SegmentSize: 256})
	defer again.Close()
	if got := drain(t, again, len(want), true); strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("after reopening read %q, want the 20 lines appended in order", got)
	}
	checkDrained(t, again)
}

// TestLockOfKilledProcess has a child process hold the directory: Open is
// refused naming the child, and once the child is killed (its lock left
// behind, never released) Open succeeds with what the child stored.
func TestLockOfKilledProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if msg, err := bufio.NewReader(stdout).ReadString('\n'); msg != "held\n" {
		t.Fatalf("the holder said %q (%v), want held", msg, err)
	}

	_, err = spool.Open(spool.Options{Dir: dir})
	checkLocked(t, err, dir, cmd.Process.Pid)

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	s, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	defer s.Close()
	if got := drain(t, s, 1, true); len(got) != 1 || got[0] != holderLine {
		t.Fatalf("read %q, want the holder's %q", got, holderLine)
	}
	checkDrained(t, s)
}
