package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets the test binary run as keyctl itself, for the tests that
// run shell commands calling keyctl, as a reader of the README would.
func TestMain(m *testing.M) {
	if os.Getenv("KEYCTL_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestReadmeKeysAsCode runs the README's keys-as-code example as written:
// its keys.yaml, and its pipeline commands with keyctl on the PATH, twice,
// on a store of each backend that a gateway would have made, and checks
// that the first run makes the keys and the second changes nothing.
func TestReadmeKeysAsCode(t *testing.T) { onEachBackend(t, testReadmeKeysAsCode) }

func testReadmeKeysAsCode(t *testing.T, c *cli) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile("(?s)<!-- keys-as-code example.*?-->\n```yaml\n(.*?)```\n\n```sh\n(.*?)```\n<!-- end of keys-as-code example -->").
		FindSubmatch(readme)
	if example == nil {
		t.Fatal("README.md has no keys-as-code example: a yaml block and a sh block between its markers")
	}
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.yaml"), example[1], 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nKEYCTL_TEST_MAIN=1 exec %q \"$@\"\n", os.Args[0])
	if err := os.WriteFile(filepath.Join(bin, "keyctl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	existing, _ := c.generate("127.0.0.1", "made before the pipeline") // the gateway's store exists
	run := func() (string, string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", string(example[2]))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KEYSTORE_DB="+c.db)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("the README's example failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	stdout, stderr := run()
	if strings.Count(stdout, "create\tweb-1-telegraf") != 2 || !strings.Contains(stderr, "Plan: 2 to create. Dry run: nothing was written.") ||
		!strings.Contains(stderr, "Applied: 2 created.") {
		t.Errorf("first run: stdout %q, stderr %q; want the plan twice, dry and applied", stdout, stderr)
	}
	r := c.run("show", "web-1-telegraf", "-o", "json").mustSucceed(t)
	for _, want := range []string{`"hostname": "web-1.example.com"`, `"rate": 100`, `"burst": 500`, `"managed_by": "apply"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show web-1-telegraf = %s, want %s", r.stdout, want)
		}
	}
	if r := c.run("show", "batch-jobs", "-o", "json").mustSucceed(t); !strings.Contains(r.stdout, `"expires_at": "2030-01-01T00:00:00Z"`) {
		t.Errorf("show batch-jobs = %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "new-keys.json")); !os.IsNotExist(err) {
		t.Errorf("the example leaves new-keys.json behind (stat: %v)", err)
	}

	before := c.dump()
	_, stderr = run()
	if strings.Count(stderr, "No changes: the key store holds the keys keys.yaml declares.") != 2 {
		t.Errorf("second run: stderr %q, want no changes twice", stderr)
	}
	if c.dump() != before {
		t.Errorf("the second run changed the store")
	}
	assertStatus(t, c, existing, "active")
}
