// Package testenv is metricgate's test bench: it starts the real servers
// that tests and scripts run against (InfluxDB 1.8.10, PostgreSQL, Redis,
// and HAProxy in front of gateways),
// each in a directory of its own on a loopback port it has bound, with its
// configuration written here and nowhere else; and it holds the helpers the
// tests share (a log buffer, a clock, the rule for a missing server).
//
// Tests get a server two ways. A fresh database on the shared server that
// scripts/test.sh starts with "testenv up" and names in the environment
// (InfluxDB, PostgreSQL), which costs a CREATE DATABASE; or a private
// server the test may stop and start (StartInfluxDB, StartPostgreSQL,
// StartRedis, StartHAProxy), stopped by t.Cleanup.
//
// The servers are installed by the scripts, never by a test: influxd is
// built into CacheDir by "testenv influxdb install", and Debian's
// postgresql, redis-server and haproxy packages by scripts/deps.sh.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The environment variables "testenv up" prints and the tests read: the
// shared servers' URLs.
const (
	EnvInfluxURL   = "METRICGATE_INFLUX_URL"
	EnvPostgresURL = "METRICGATE_POSTGRES_URL"
)

// Missing ends a test that needs something this machine lacks: it fails the
// test when CI is set, since CI must have installed everything and a skip
// there would hide it, and skips the test otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal(msg + " (CI is set: run the tests with scripts/test.sh, which installs and starts what they need)")
	}
	t.Skip(msg + " (scripts/test.sh installs and starts what the tests need)")
}

// CacheDir is where servers built from source are kept between runs:
// $METRICGATE_CACHE, or metricgate in the user's cache directory
// (~/.cache/metricgate).
func CacheDir() string {
	if d := os.Getenv("METRICGATE_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "metricgate")
}

// Chromium returns the path of the headless browser for the web console's
// test: $METRICGATE_CHROMIUM, or Debian's /usr/bin/chromium, which
// scripts/deps.sh installs. Without one the test is Missing.
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("METRICGATE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		Missing(t, "no Chromium: %v", err)
	}
	return path
}
