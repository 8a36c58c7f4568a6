package main

import (
	"fmt"
	"runtime"
	"testing"
)

func TestNewCmdVersion(t *testing.T) {
	got, err := parseCmd(t, testFactory(false), NewCmdVersion, []string{"version", "-o", "json"})
	checkErr(t, err, exitOK, "")
	if got.Version != "dev" || got.GoVersion != runtime.Version() || got.Format != formatJSON {
		t.Errorf("got version %q, go %q, format %s; want dev, %s, json", got.Version, got.GoVersion, got.Format, runtime.Version())
	}
	_, err = parseCmd(t, testFactory(false), NewCmdVersion, []string{"version", "now"})
	checkErr(t, err, exitUsage, `takes no arguments, got "now"`)
}

func TestVersion(t *testing.T) {
	c := newCLI(t)
	r := c.run("version").mustSucceed(t)
	if want := fmt.Sprintf("keyctl version dev (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH); r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}

	old := version
	version = "v1.2.3"
	t.Cleanup(func() { version = old })
	r = c.run("version", "-o", "json").mustSucceed(t)
	if want := fmt.Sprintf("{\n  \"version\": \"v1.2.3\",\n  \"go_version\": %q\n}\n", runtime.Version()); r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}
