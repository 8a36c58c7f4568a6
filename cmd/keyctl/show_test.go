package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewCmdShow(t *testing.T) {
	key := uuid.NewString()
	tests := []struct {
		name     string
		args     []string
		want     keyRef
		wantFmt  outputFormat
		wantCode int
		wantErr  string
	}{
		{name: "ID", args: []string{"7"}, want: keyRef{ID: 7}, wantFmt: formatTable},
		{name: "Key", args: []string{key}, want: keyRef{Key: key}, wantFmt: formatTable},
		{name: "UpperCaseKey", args: []string{strings.ToUpper(key), "-o", "json"}, want: keyRef{Key: key}, wantFmt: formatJSON},
		{name: "NoArgument", wantCode: exitUsage, wantErr: "show takes one key id, key or name, got 0 arguments"},
		{name: "TwoArguments", args: []string{"1", "2"}, wantCode: exitUsage, wantErr: "got 2 arguments"},
		{name: "Neither", args: []string{"Web 1"}, wantCode: exitUsage, wantErr: `"Web 1" is neither a key id, a key nor a key's name`},
		{name: "ZeroID", args: []string{"0"}, wantCode: exitUsage, wantErr: "invalid key id 0"},
		{name: "NegativeID", args: []string{"--", "-3"}, wantCode: exitUsage, wantErr: "invalid key id -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdShow, append([]string{"show"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Ref != tt.want || got.Format != tt.wantFmt {
				t.Errorf("got ref %+v, format %s; want %+v, %s", got.Ref, got.Format, tt.want, tt.wantFmt)
			}
		})
	}
}

func TestShowTable(t *testing.T) { onEachBackend(t, testShowTable) }

func testShowTable(t *testing.T, c *cli) {
	_, key := c.generate("web-1.example.com", "")
	// generate refuses control characters, but a database edited by hand
	// may hold them: show must not pass them to the terminal.
	c.sql("UPDATE api_keys SET description = ? WHERE id = 1", "web\tone\x1b")
	r := c.run("show", "1").mustSucceed(t)
	want := "" +
		"ID:           1\n" +
		"Name:         -\n" +
		"Prefix:       " + key[:8] + "\n" +
		"Hostname:     web-1.example.com\n" +
		"Description:  web one \n" +
		"Status:       active\n" +
		"Scopes:       submit\n" +
		"Measurements: any\n" +
		"Rate:         server default\n" +
		"Burst:        server default\n" +
		"Bucket:       the gateway's\n" +
		"Max series:   server default\n" +
		"Created:      2026-03-01T12:00:00Z\n" +
		"Revoked:      -\n" +
		"Expires:      never\n" +
		"Replaced by:  -\n" +
		"Last used:    never\n" +
		"Requests:     0\n" +
		"Points:       0\n" +
		"Managed by:   -\n" +
		"Quarantined:  no\n"
	if r.stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, want)
	}
}

func TestShowJSON(t *testing.T) { onEachBackend(t, testShowJSON) }

func testShowJSON(t *testing.T, c *cli) {
	_, key := c.generate("10.1.2.3/16", "")
	for _, ref := range []string{"1", key, strings.ToUpper(key)} {
		r := c.run("show", ref, "-o", "json").mustSucceed(t)
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("show %s: stdout %q is not a JSON object: %v", ref, r.stdout, err)
		}
		if got["id"] != 1.0 || got["hostname"] != "10.1.0.0/16" || got["status"] != "active" || got["prefix"] != key[:8] {
			t.Errorf("show %s = %v, want key 1 for 10.1.0.0/16, active", ref, got)
		}
		if _, ok := got["key"]; ok || strings.Contains(r.stdout, key) {
			t.Errorf("show %s printed the key's value: %s", ref, r.stdout)
		}
	}
}

func TestShowUnknown(t *testing.T) { onEachBackend(t, testShowUnknown) }

func testShowUnknown(t *testing.T, c *cli) {
	c.generate("web-1", "")
	checkRuns(t, c, notFoundCases(c, "show"))
}

// TestShowUsageAndPolicy checks that show gives a key's policy and what the
// apiservers recorded of its use, summed.
func TestShowUsageAndPolicy(t *testing.T) { onEachBackend(t, testShowUsageAndPolicy) }

func testShowUsageAndPolicy(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "10.0.0.7", "--scope", "submit,admin", "--measurement", "cpu", "--measurement", "mem",
		"--rate", "2.5", "--burst", "10", "--expires-at", "2026-04-01T00:00:00Z").mustSucceed(t)
	// Two apiservers recorded its use: show gives the sum, and the latest.
	c.sql("INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points) VALUES (1, 'gw-1', ?, '10.0.0.6', 10, 3000)",
		testNow.Add(30*time.Minute).UnixNano())
	c.sql("INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points) VALUES (1, 'gw-2', ?, '10.0.0.7', 2, 400)",
		testNow.Add(time.Hour).UnixNano())
	r := c.run("show", "1").mustSucceed(t)
	for _, want := range []string{
		"Scopes:       submit, admin\n",
		"Measurements: cpu, mem\n",
		"Rate:         2.5 points/s\n",
		"Burst:        10 points\n",
		"Expires:      2026-04-01T00:00:00Z\n",
		"Last used:    2026-03-01T13:00:00Z from 10.0.0.7\n",
		"Requests:     12\n",
		"Points:       3400\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show =\n%s\nwant a line %q", r.stdout, want)
		}
	}
}
