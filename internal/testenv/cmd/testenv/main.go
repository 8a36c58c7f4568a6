// Command testenv starts and stops the servers metricgate's scripts run
// (InfluxDB, PostgreSQL, Redis) with the configuration the tests use; the
// scripts build it into bin/. Run it without arguments for its commands.
package main

import (
	"os"

	"github.com/metricgate/metricgate/internal/testenv"
)

func main() {
	os.Exit(testenv.Main(os.Args[1:], os.Stdout, os.Stderr))
}
