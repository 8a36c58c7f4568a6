package testenv

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"
)

// InfluxVersion is the InfluxDB that metricgate is tested against. 1.8 is
// pure Go: it builds from its module in about a minute, once.
const InfluxVersion = "v1.8.10"

// influxConfig is the configuration of every InfluxDB this package starts,
// for tests, benchmarks and the quickstart alike. Its HTTP API has no body
// size limit, since the gateway's batches are bounded by the gateway.
var influxConfig = template.Must(template.New("influxdb.conf").Parse(`reporting-disabled = true
bind-address = "127.0.0.1:{{.RPCPort}}"
[meta]
  dir = {{printf "%q" .Meta}}
[data]
  dir = {{printf "%q" .Data}}
  wal-dir = {{printf "%q" .WAL}}
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{{.Port}}"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
`))

// InfluxdPath is where InstallInfluxd puts influxd: in CacheDir, where the
// scripts have always built it, so a binary built once is reused.
func InfluxdPath() string {
	return filepath.Join(CacheDir(), "influxdb-"+InfluxVersion, "bin", "influxd")
}

// InstallInfluxd builds influxd into InfluxdPath unless it is there,
// telling log that it does, and returns its path.
func InstallInfluxd(log io.Writer) (string, error) {
	bin := InfluxdPath()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(log, "building influxd %s into %s (about a minute, once)\n", InfluxVersion, filepath.Dir(bin))
	cmd := exec.Command("go", "install", "github.com/influxdata/influxdb/cmd/influxd@"+InfluxVersion)
	// Outside any module, so no project's go.mod is read or touched.
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin), "GOFLAGS=-mod=mod")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building influxd %s: %w", InfluxVersion, err)
	}
	return bin, nil
}

// InfluxServer is an InfluxDB of its own in a directory, which a test may
// stop and start again on the same port and data, as an outage would
// (Stop and Start).
type InfluxServer struct {
	URL string // http://127.0.0.1:port

	server
	dir  string
	conf string
}

// StartInfluxDB starts a private InfluxDB for the test, with database db
// created, and stops it when the test ends. Without influxd (built by
// scripts/test.sh) the test is Missing.
func StartInfluxDB(t testing.TB, db string) *InfluxServer {
	t.Helper()
	if _, err := os.Stat(InfluxdPath()); err != nil {
		Missing(t, "no influxd: %v", err)
	}
	s, err := launchInfluxDB(t.TempDir(), db, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.proc.stop)
	return s
}

// launchInfluxDB starts influxd from InfluxdPath with its data in dir on
// free ports, and creates database db.
func launchInfluxDB(dir, db string, detach bool) (*InfluxServer, error) {
	s := &InfluxServer{dir: dir, conf: filepath.Join(dir, "influxdb.conf")}
	s.check = s.ping
	s.proc = &process{argv: []string{InfluxdPath(), "run", "-config", s.conf}, dir: dir,
		logPath: filepath.Join(dir, "influxd.log"), detach: detach}
	err := onFreePorts(2, func(ports []int) error {
		var conf strings.Builder
		influxConfig.Execute(&conf, map[string]any{
			"Port": ports[0], "RPCPort": ports[1],
			"Meta": filepath.Join(dir, "meta"), "Data": filepath.Join(dir, "data"), "WAL": filepath.Join(dir, "wal"),
		})
		if err := os.WriteFile(s.conf, []byte(conf.String()), 0o644); err != nil {
			return err
		}
		s.URL = "http://" + loopback(ports[0])
		return s.proc.start(s.check)
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.DB(db).query(fmt.Sprintf("CREATE DATABASE %q", db)); err != nil {
		s.proc.stop()
		return nil, err
	}
	return s, nil
}

// DB returns a handle on database name of this server.
func (s *InfluxServer) DB(name string) *DB { return &DB{URL: s.URL, Name: name} }

var pingClient = &http.Client{Timeout: 2 * time.Second}

func (s *InfluxServer) ping() error {
	resp, err := pingClient.Get(s.URL + "/ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return errors.New(resp.Status)
	}
	return nil
}

var dbCounter atomic.Int64

// InfluxDB creates a fresh database for the test on the shared InfluxDB
// that scripts/test.sh starts and names in METRICGATE_INFLUX_URL, and drops
// it when the test ends. Without that server the test is Missing.
func InfluxDB(t testing.TB) *DB {
	t.Helper()
	base := os.Getenv(EnvInfluxURL)
	if base == "" {
		Missing(t, "%s is not set: no shared InfluxDB", EnvInfluxURL)
	}
	db := &DB{URL: base, Name: uniqueName()}
	db.Query(t, fmt.Sprintf("CREATE DATABASE %q", db.Name))
	t.Cleanup(func() { db.Query(t, fmt.Sprintf("DROP DATABASE %q", db.Name)) })
	return db
}

// uniqueName names a database no other test, in this test binary or
// another running at once, has named.
func uniqueName() string {
	return fmt.Sprintf("t%d_%d_%d", time.Now().UnixNano(), os.Getpid(), dbCounter.Add(1))
}
