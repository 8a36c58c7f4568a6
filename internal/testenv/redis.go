package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// redisConfig is the configuration of every Redis this package starts:
// loopback only, and nothing written to disk.
var redisConfig = template.Must(template.New("redis.conf").Parse(`bind 127.0.0.1
port {{.Port}}
protected-mode yes
daemonize no
dir {{printf "%q" .Dir}}
save ""
appendonly no
loglevel warning
logfile ""
`))

// RedisServer is a Redis server of its own in a directory, which a test
// may stop and start again on the same port.
type RedisServer struct {
	Addr string // 127.0.0.1:port

	server
}

// StartRedis starts a private Redis for the test and stops it when the
// test ends; it starts in milliseconds, so every test that needs one has
// its own. Without redis-server (Debian's redis-server package, which
// scripts/deps.sh installs) the test is Missing.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "no Redis: %v", err)
	}
	s, err := launchRedis(bin, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.proc.stop)
	return s
}

func launchRedis(bin, dir string, detach bool) (*RedisServer, error) {
	conf := filepath.Join(dir, "redis.conf")
	s := &RedisServer{}
	s.check = s.ping
	s.proc = &process{argv: []string{bin, conf}, dir: dir, logPath: filepath.Join(dir, "redis-server.log"), detach: detach}
	err := onFreePorts(1, func(ports []int) error {
		var b strings.Builder
		redisConfig.Execute(&b, map[string]any{"Port": ports[0], "Dir": dir})
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return err
		}
		s.Addr = loopback(ports[0])
		return s.proc.start(s.check)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ping sends PING in Redis's protocol and expects PONG: a server loading
// its data answers LOADING instead.
func (s *RedisServer) ping() error {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis answered PING with %q", line)
	}
	return nil
}
