package influxtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is an InfluxDB of the test's own, which the test may stop and
// start again on the same port and data, as an outage would.
type Server struct {
	URL  string
	dir  string
	conf string
	bin  string
	cmd  *exec.Cmd
}

// StartServer starts a private InfluxDB from the binary named by
// METRICGATE_INFLUXD (scripts/test.sh sets it), with database db created.
// Without it the test fails when CI is set, and is skipped otherwise.
func StartServer(t testing.TB, db string) *Server {
	t.Helper()
	bin := os.Getenv("METRICGATE_INFLUXD")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("METRICGATE_INFLUXD is not set: run the tests with scripts/test.sh")
		}
		t.Skip("METRICGATE_INFLUXD is not set: run scripts/test.sh to get an InfluxDB binary")
	}
	dir := t.TempDir()
	httpPort, rpcPort := freePort(t), freePort(t)
	conf := filepath.Join(dir, "influxdb.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = "%s/meta"
[data]
  dir = "%s/data"
  wal-dir = "%s/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
[logging]
  level = "warn"
`, rpcPort, dir, dir, dir, httpPort)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), dir: dir, conf: conf, bin: bin}
	s.Start(t)
	t.Cleanup(func() { s.Stop(t) })
	(&DB{URL: s.URL, Name: db}).Query(t, fmt.Sprintf("CREATE DATABASE %q", db))
	return s
}

// DB returns a handle on database name of this server.
func (s *Server) DB(name string) *DB { return &DB{URL: s.URL, Name: name} }

// Start starts the server and waits until it answers /ping.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(s.dir, "influxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command(s.bin, "run", "-config", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			return
		}
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, "influxd.log"))
	t.Fatalf("influxd did not start:\n%s", b)
}

// Stop stops the server and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on: for a server a test starts, or an InfluxDB that is down.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// freePort returns a loopback port that could be bound just now, chosen
// below the kernel's range of ephemeral ports, as scripts/influxdb.sh
// chooses: a port the kernel hands out for ":0" can become the local end of
// an outgoing connection between this test closing it and a server binding
// it, and the server then fails with "address already in use".
func freePort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11024 {
				low = n
			}
		}
	}
	for range 100 {
		p := 10000 + rand.IntN(low-11000)
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free loopback port below the ephemeral range after 100 tries")
	return 0
}
