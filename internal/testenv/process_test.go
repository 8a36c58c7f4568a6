package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTakenPortIsRetried gives a real server a port something else holds
// first: the server reports it in use, and it is started again on another.
func TestTakenPortIsRetried(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "no Redis: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	picks := 0
	pickPort = func() (int, error) {
		if picks++; picks == 1 {
			return taken, nil
		}
		return FreePort()
	}
	t.Cleanup(func() { pickPort = FreePort })

	dir := t.TempDir()
	s, err := launchRedis(bin, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.proc.stop()
	if s.Addr == loopback(taken) || picks != 2 {
		t.Errorf("got %s after %d picks, want another port than %d on the second", s.Addr, picks, taken)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis-server.log"))
	if !strings.Contains(strings.ToLower(string(log)), "address already in use") {
		t.Errorf("the log does not say the first port was in use:\n%s", log)
	}
}
