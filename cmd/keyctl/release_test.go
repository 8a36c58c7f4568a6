package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// quarantine quarantines key id in c's store as an apiserver would, at
// testNow, for reason.
func (c *cli) quarantine(id int64, reason string) {
	c.t.Helper()
	c.sql("UPDATE api_keys SET quarantined_at = ?, quarantine_reason = ? WHERE id = ?", testNow.UnixNano(), reason, id)
}

// TestListQuarantined checks that list flags a quarantined key in every
// form and that --quarantined keeps it alone.
func TestListQuarantined(t *testing.T) { onEachBackend(t, testListQuarantined) }

func testListQuarantined(t *testing.T, c *cli) {
	keys := listFixture(t, c)
	c.quarantine(3, "InfluxDB refused 100 of its points within 1m0s")
	c.run("update", "3", "--bucket", "tenant-a").mustSucceed(t)
	p2, p3 := keys[2][:8], keys[3][:8]
	r := c.runTTY("", "list").mustSucceed(t)
	want := "" +
		"ID  PREFIX    NAME  HOSTNAME  DESCRIPTION  STATUS       CREATED           EXPIRES  LAST USED\n" +
		"2   " + p2 + "  -     web-1     new          active       2026-03-01 12:00  never    never\n" +
		"3   " + p3 + "  -     web-2                  quarantined  2026-03-01 12:00  never    never\n"
	if r.stdout != want {
		t.Errorf("table =\n%s\nwant\n%s", r.stdout, want)
	}
	r = c.run("list", "--quarantined").mustSucceed(t)
	if want := "3\t" + p3 + "\tweb-2\t\tactive\t2026-03-01T12:00:00Z\t\t\t\t2026-03-01T12:00:00Z\ttenant-a\n"; r.stdout != want {
		t.Errorf("list --quarantined = %q, want %q", r.stdout, want)
	}
	var listed []struct {
		ID               int64   `json:"id"`
		Quarantined      bool    `json:"quarantined"`
		QuarantinedAt    *string `json:"quarantined_at"`
		QuarantineReason string  `json:"quarantine_reason"`
		Bucket           string  `json:"bucket"`
	}
	r = c.run("list", "-o", "json").mustSucceed(t)
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Quarantined || !listed[1].Quarantined || deref(listed[1].QuarantinedAt) != "2026-03-01T12:00:00Z" ||
		!strings.Contains(listed[1].QuarantineReason, "refused 100") || listed[1].Bucket != "tenant-a" {
		t.Errorf("list -o json = %+v, want key 3 alone quarantined, with the time, reason and bucket", listed)
	}
	if r := c.runTTY("", "list", "--quarantined", "--hostname", "web-1"); r.stderr != "No active keys quarantined for host web-1.\n" {
		t.Errorf("an empty list --quarantined says %q", r.stderr)
	}
}

// TestRelease releases a quarantined key by id and by value: it is no
// longer quarantined, the audit log names who released it, and a second
// release says there was nothing to do.
func TestRelease(t *testing.T) { onEachBackend(t, testRelease) }

func testRelease(t *testing.T, c *cli) {
	id, key := c.generate("web-1", "")
	c.quarantine(id, "refused")
	r := c.run("release", fmt.Sprint(id)).mustSucceed(t)
	if want := fmt.Sprintf("Released key %d (%s…, host web-1): its writes are taken again.\n", id, key[:8]); r.stdout != want {
		t.Errorf("release = %q, want %q", r.stdout, want)
	}
	c.now = c.now.Add(time.Minute)
	r = c.run("release", key).mustSucceed(t)
	if want := fmt.Sprintf("Key %d (%s…, host web-1) is not quarantined; nothing changed.\n", id, key[:8]); r.stdout != want {
		t.Errorf("release again = %q, want %q", r.stdout, want)
	}
	c.quarantine(id, "refused again")
	r = c.run("release", fmt.Sprint(id), "-o", "json").mustSucceed(t)
	var k struct {
		Quarantined bool `json:"quarantined"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.Quarantined {
		t.Errorf("release -o json = %s (%v), want the key, not quarantined", r.stdout, err)
	}
	audit := c.run("audit", fmt.Sprint(id)).mustSucceed(t).stdout
	if n := strings.Count(audit, "release"); n != 2 || !strings.Contains(audit, testActor) {
		t.Errorf("audit =\n%s\nwant two releases by %s", audit, testActor)
	}
	checkRuns(t, c, append(notFoundCases(c, "release"),
		runCase{"NoArgument", []string{"release"}, exitUsage, "keyctl: release takes one key id, key or name, got 0 arguments"}))
}
