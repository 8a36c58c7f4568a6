package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// usage is the command's help, for the scripts that call it.
const usage = `usage: testenv COMMAND
Starts the servers metricgate's scripts run, each detached, in DIR, on a
free loopback port, with the configuration the tests use; prints shell
assignments to eval.

  port                              print a free loopback port
  influxdb install                  build influxd into the cache if absent
  influxdb bin                      install, then print influxd's path
  influxdb start DIR [DB]           start InfluxDB, create DB (metricgate),
                                    print INFLUX_URL=http://127.0.0.1:PORT
  influxdb stop DIR
  postgresql start DIR [DB]         start PostgreSQL, create DB if given,
                                    print POSTGRES_URL=postgres://...
  postgresql stop DIR
  redis start DIR                   start Redis, print REDIS_ADDR=127.0.0.1:PORT
  redis stop DIR
  haproxy start DIR MODE SOURCE ADDR...
                                    start HAProxy in front of the gateways
                                    at ADDR..., connecting from SOURCE,
                                    MODE proxy-v2 or forwardfor; print
                                    HAPROXY_URL=http://127.0.0.1:PORT
  haproxy stop DIR
  up DIR                            start the servers the tests share, print
                                    METRICGATE_INFLUX_URL=... and
                                    METRICGATE_POSTGRES_URL=...
  down DIR                          stop them
`

// Exit codes of Main.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one of Main's commands: it takes from min to max arguments.
type command struct {
	min, max int
	run      func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"port": {0, 0, func(_ []string, stdout, _ io.Writer) error {
		p, err := FreePort()
		if err == nil {
			fmt.Fprintln(stdout, p)
		}
		return err
	}},
	"influxdb install": {0, 0, func(_ []string, _, stderr io.Writer) error {
		_, err := InstallInfluxd(stderr)
		return err
	}},
	"influxdb bin": {0, 0, func(_ []string, stdout, stderr io.Writer) error {
		bin, err := InstallInfluxd(stderr)
		if err == nil {
			fmt.Fprintln(stdout, bin)
		}
		return err
	}},
	"influxdb start": {1, 2, func(args []string, stdout, stderr io.Writer) error {
		url, err := startInfluxDB(args[0], arg(args, 1), stderr)
		if err == nil {
			printVar(stdout, "INFLUX_URL", url)
		}
		return err
	}},
	"influxdb stop": {1, 1, func(args []string, _, _ io.Writer) error { return stopDetached(args[0], "influxd") }},
	"postgresql start": {1, 2, func(args []string, stdout, _ io.Writer) error {
		url, err := startPostgreSQL(args[0], arg(args, 1))
		if err == nil {
			printVar(stdout, "POSTGRES_URL", url)
		}
		return err
	}},
	"postgresql stop": {1, 1, func(args []string, _, _ io.Writer) error { return stopPostgreSQL(args[0]) }},
	"redis start": {1, 1, func(args []string, stdout, _ io.Writer) error {
		addr, err := startRedis(args[0])
		if err == nil {
			printVar(stdout, "REDIS_ADDR", addr)
		}
		return err
	}},
	"redis stop": {1, 1, func(args []string, _, _ io.Writer) error { return stopDetached(args[0], "redis-server") }},
	"haproxy start": {4, 64, func(args []string, stdout, _ io.Writer) error {
		url, err := startHAProxy(args[0], HAProxyConfig{Mode: args[1], Source: args[2], Servers: args[3:]})
		if err == nil {
			printVar(stdout, "HAPROXY_URL", url)
		}
		return err
	}},
	"haproxy stop": {1, 1, func(args []string, _, _ io.Writer) error { return stopDetached(args[0], "haproxy") }},
	"up":           {1, 1, func(args []string, stdout, stderr io.Writer) error { return up(args[0], stdout, stderr) }},
	"down":         {1, 1, func(args []string, _, _ io.Writer) error { return down(args[0]) }},
}

// Main runs the testenv command with args (without the program's name),
// and returns its exit code. Directories are made absolute, since the
// servers run in them.
func Main(args []string, stdout, stderr io.Writer) int {
	for n := min(2, len(args)); n > 0; n-- {
		c, ok := commands[strings.Join(args[:n], " ")]
		if !ok {
			continue
		}
		rest := slices.Clone(args[n:])
		if len(rest) < c.min || len(rest) > c.max {
			break
		}
		if len(rest) > 0 && c.max > 0 {
			abs, err := filepath.Abs(rest[0])
			if err != nil {
				return report(err, stderr)
			}
			rest[0] = abs
		}
		return report(c.run(rest, stdout, stderr), stderr)
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

func report(err error, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, "testenv:", err)
		return exitError
	}
	return exitOK
}

// up starts the servers the tests share, at once, in dir/influxdb and
// dir/postgresql, and prints the variables the tests read.
func up(dir string, stdout, stderr io.Writer) error {
	type result struct {
		url string
		err error
	}
	influx, postgres := make(chan result, 1), make(chan result, 1)
	go func() {
		url, err := startInfluxDB(filepath.Join(dir, "influxdb"), "metricgate", stderr)
		influx <- result{url, err}
	}()
	go func() {
		url, err := startPostgreSQL(filepath.Join(dir, "postgresql"), "")
		postgres <- result{url, err}
	}()
	i, p := <-influx, <-postgres
	if err := errors.Join(i.err, p.err); err != nil {
		down(dir)
		return err
	}
	printVar(stdout, EnvInfluxURL, i.url)
	printVar(stdout, EnvPostgresURL, p.url)
	return nil
}

// down stops what up started.
func down(dir string) error {
	return errors.Join(stopDetached(filepath.Join(dir, "influxdb"), "influxd"), stopPostgreSQL(filepath.Join(dir, "postgresql")))
}

// startInfluxDB starts influxd detached with its data in dir, installing
// it first if need be, and returns its URL.
func startInfluxDB(dir, db string, stderr io.Writer) (string, error) {
	if db == "" {
		db = "metricgate"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := InstallInfluxd(stderr); err != nil {
		return "", err
	}
	s, err := launchInfluxDB(dir, db, true)
	if err != nil {
		return "", err
	}
	return s.URL, s.proc.writePID(dir)
}

// startPostgreSQL starts PostgreSQL detached, creates database db if it is
// named, and returns its URL. The data is in a directory of its own, which
// the user PostgreSQL runs as can reach; dir holds the process id and a
// link to it.
func startPostgreSQL(dir, db string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := stopPostgreSQL(dir); err != nil {
		return "", err
	}
	bin, err := postgresBin()
	if err != nil {
		return "", fmt.Errorf("%w (scripts/deps.sh postgresql installs it)", err)
	}
	s, err := launchPostgreSQL(bin, true)
	if err != nil {
		return "", err
	}
	if err := errors.Join(s.proc.writePID(dir), os.Symlink(s.dir, filepath.Join(dir, "postgres.dir"))); err != nil {
		s.remove()
		return "", err
	}
	if db == "" {
		return s.URL, nil
	}
	if err := psql(s.URL, fmt.Sprintf("CREATE DATABASE %q", db)); err != nil {
		return "", err
	}
	return withDatabase(s.URL, db)
}

// startRedis starts redis-server detached in dir and returns its address.
func startRedis(dir string) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("no Redis (scripts/deps.sh redis-server installs it): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	s, err := launchRedis(bin, dir, true)
	if err != nil {
		return "", err
	}
	return s.Addr, s.proc.writePID(dir)
}

// startHAProxy starts haproxy detached in dir with cfg and returns its
// URL.
func startHAProxy(dir string, cfg HAProxyConfig) (string, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return "", fmt.Errorf("no HAProxy (scripts/deps.sh haproxy installs it): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	h, err := launchHAProxy(bin, dir, cfg, true)
	if err != nil {
		return "", err
	}
	return h.URL, h.proc.writePID(dir)
}

// stopPostgreSQL stops the PostgreSQL started in dir and removes its data.
func stopPostgreSQL(dir string) error {
	if err := stopDetached(dir, "postgres"); err != nil {
		return err
	}
	link := filepath.Join(dir, "postgres.dir")
	data, err := os.Readlink(link)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return errors.Join(os.RemoveAll(data), os.Remove(link))
}

// printVar prints a shell assignment of value to name.
func printVar(w io.Writer, name, value string) {
	fmt.Fprintf(w, "%s='%s'\n", name, strings.ReplaceAll(value, "'", `'\''`))
}
