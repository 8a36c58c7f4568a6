package testenv

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
)

// postgresConfig is the configuration of every PostgreSQL this package
// starts, written over the one initdb makes: TCP on loopback only, its
// socket in its own directory, and no waiting for the disk, since a test
// server's data is thrown away.
var postgresConfig = template.Must(template.New("postgresql.conf").Parse(`listen_addresses = '127.0.0.1'
port = {{.Port}}
unix_socket_directories = '{{.Dir}}'
max_connections = 100
shared_buffers = 32MB
dynamic_shared_memory_type = posix
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_timezone = 'UTC'
timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C'
lc_monetary = 'C'
lc_numeric = 'C'
lc_time = 'C'
default_text_search_config = 'pg_catalog.english'
`))

// postgresUser is the account PostgreSQL runs as when this process is
// root, which PostgreSQL refuses: the one Debian's package creates.
const postgresUser = "postgres"

// PostgresServer is a PostgreSQL server of its own, with its data and
// socket in a temporary directory owned by the user it runs as. Stop is a
// fast shutdown, which disconnects the clients.
type PostgresServer struct {
	URL string // postgres://postgres@127.0.0.1:port/postgres?sslmode=disable

	server
	dir string
	bin string
}

// StartPostgreSQL starts a private PostgreSQL for the test, which the test
// may stop and start again, and stops and removes it when the test ends.
// Without PostgreSQL (Debian's postgresql package, which scripts/deps.sh
// installs) the test is Missing.
func StartPostgreSQL(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		Missing(t, "%v", err)
	}
	s, err := launchPostgreSQL(bin, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.remove)
	return s
}

// PostgreSQL creates a fresh database for the test on the shared
// PostgreSQL that scripts/test.sh starts and names in
// METRICGATE_POSTGRES_URL, drops it when the test ends, and returns its
// URL. Without that server the test is Missing.
func PostgreSQL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		Missing(t, "%s is not set: no shared PostgreSQL", EnvPostgresURL)
	}
	return freshPostgresDB(t, base)
}

// CreateDatabase creates a fresh database on this server for the test,
// drops it when the test ends, and returns its URL.
func (s *PostgresServer) CreateDatabase(t testing.TB) string {
	t.Helper()
	return freshPostgresDB(t, s.URL)
}

// launchPostgreSQL makes a data directory with initdb from the binaries in
// bin and starts the server on a free port.
func launchPostgreSQL(bin string, detach bool) (*PostgresServer, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "metricgate-postgres-")
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{dir: dir, bin: bin}
	if err := s.launch(cred, detach); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *PostgresServer) launch(cred *syscall.Credential, detach bool) error {
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	s.check = s.ready
	s.proc = &process{argv: []string{filepath.Join(s.bin, "postgres"), "-D", data}, dir: s.dir,
		logPath: filepath.Join(s.dir, "postgres.log"), cred: cred, detach: detach}
	initdb := exec.Command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", postgresUser,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = s.dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return onFreePorts(1, func(ports []int) error {
		var conf strings.Builder
		postgresConfig.Execute(&conf, map[string]any{"Port": ports[0], "Dir": s.dir})
		if err := os.WriteFile(filepath.Join(data, "postgresql.conf"), []byte(conf.String()), 0o644); err != nil {
			return err
		}
		s.URL = postgresURL(loopback(ports[0]), "postgres")
		return s.proc.start(s.check)
	})
}

// ready reports whether the server this process started accepts
// connections, as the status line of its postmaster.pid says: a server
// answers TCP before it is ready, and a file left by a killed server names
// another process.
func (s *PostgresServer) ready() error {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || lines[0] != strconv.Itoa(s.proc.cmd.Process.Pid) || strings.TrimSpace(lines[7]) != "ready" {
		return errors.New("postgres is not ready")
	}
	return nil
}

// remove stops the server and deletes its data.
func (s *PostgresServer) remove() {
	s.proc.stop()
	os.RemoveAll(s.dir)
}

// postgresBin returns the directory of the newest PostgreSQL that Debian's
// packages installed (/usr/lib/postgresql/VERSION/bin, where they are kept
// off PATH), or of the postgres on PATH.
func postgresBin() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	version := func(path string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
		return n
	}
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	if len(found) > 0 {
		return filepath.Dir(found[len(found)-1]), nil
	}
	if path, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", errors.New("no PostgreSQL: neither /usr/lib/postgresql/*/bin/postgres nor postgres on PATH")
}

// postgresCredential returns the user to run PostgreSQL as: nil, the
// current one, unless that is root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(postgresUser)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL will not run as root, and there is no user %q to run it as (Debian's postgresql package creates it): %w", postgresUser, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freshPostgresDB creates a database with a unique name on the server at
// serverURL, drops it when the test ends, and returns its URL.
func freshPostgresDB(t testing.TB, serverURL string) string {
	t.Helper()
	name := uniqueName()
	if err := psql(serverURL, fmt.Sprintf("CREATE DATABASE %q", name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := psql(serverURL, fmt.Sprintf("DROP DATABASE IF EXISTS %q WITH (FORCE)", name)); err != nil {
			t.Error(err)
		}
	})
	u, err := withDatabase(serverURL, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// withDatabase returns serverURL with its database replaced by name.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// psql runs one SQL statement with the psql beside the server's binaries.
func psql(serverURL, sql string) error {
	bin, err := postgresBin()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", serverURL, "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql %q: %w\n%s", sql, err, out)
	}
	return nil
}

func postgresURL(addr, db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(postgresUser), Host: addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}
