package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestNewCmdGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     GenerateOptions
		wantCode int
		wantErr  string
	}{
		{name: "Hostname", args: []string{"--hostname", "web-1"},
			want: GenerateOptions{Hostname: "web-1", Format: formatTable}},
		{name: "AllFlags", args: []string{"--hostname=10.0.0.0/24", "--description", "batch jobs", "-q"},
			want: GenerateOptions{Hostname: "10.0.0.0/24", Description: "batch jobs", Quiet: true, Format: formatTable}},
		{name: "JSON", args: []string{"--hostname", "web-1", "-o", "json"},
			want: GenerateOptions{Hostname: "web-1", Format: formatJSON}},
		{name: "MissingHostname", args: []string{"--description", "x"}, wantCode: exitUsage, wantErr: "--hostname is required"},
		{name: "EmptyHostname", args: []string{"--hostname", " "}, wantCode: exitUsage, wantErr: "--hostname must not be empty"},
		{name: "Argument", args: []string{"--hostname", "web-1", "web-2"}, wantCode: exitUsage, wantErr: `takes no arguments, got "web-2"`},
		{name: "QuietJSON", args: []string{"--hostname", "web-1", "-q", "-o", "json"}, wantCode: exitUsage, wantErr: "--quiet and --output json"},
		{name: "BadOutput", args: []string{"--hostname", "web-1", "-o", "xml"}, wantCode: exitUsage, wantErr: `want "table" or "json"`},
		{name: "UnknownFlag", args: []string{"--host", "web-1"}, wantCode: exitUsage, wantErr: "unknown flag: --host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCmd(t, testFactory(false), NewCmdGenerate, append([]string{"generate"}, tt.args...))
			checkErr(t, err, tt.wantCode, tt.wantErr)
			if tt.wantCode != exitOK {
				if got != nil {
					t.Errorf("generate ran with %+v, want a usage error first", *got)
				}
				return
			}
			if got.Hostname != tt.want.Hostname || got.Description != tt.want.Description ||
				got.Quiet != tt.want.Quiet || got.Format != tt.want.Format {
				t.Errorf("got hostname %q, description %q, quiet %v, format %s; want %q, %q, %v, %s",
					got.Hostname, got.Description, got.Quiet, got.Format,
					tt.want.Hostname, tt.want.Description, tt.want.Quiet, tt.want.Format)
			}
		})
	}
}

func TestGenerateTable(t *testing.T) {
	c := newCLI(t)
	r := c.run("generate", "--hostname", "Web-1.Example.com.", "--description", "web one").mustSucceed(t)
	m := regexp.MustCompile(`^Generated key 1 \(([0-9a-f]{8})…, host web-1\.example\.com\)\.\n\n    (\S+)\n\nStore this key now: it will not be shown again\.\n$`).
		FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want the id, host, key and a warning", r.stdout)
	}
	prefix, key := m[1], m[2]
	if u, err := uuid.Parse(key); err != nil || u.String() != key || key[:8] != prefix {
		t.Errorf("key %q with prefix %q: want a canonical UUID starting with the prefix", key, prefix)
	}
	show := c.run("show", key, "-o", "json").mustSucceed(t)
	if !strings.Contains(show.stdout, `"id": 1,`) {
		t.Errorf("show KEY = %s, want key 1", show.stdout)
	}
}

func TestGenerateJSON(t *testing.T) {
	c := newCLI(t)
	r := c.run("generate", "--hostname", "::ffff:192.0.2.9", "--description", "<web & db>", "-o", "json").mustSucceed(t)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q is not a JSON object: %v", r.stdout, err)
	}
	key, _ := got["key"].(string)
	if _, err := uuid.Parse(key); err != nil {
		t.Fatalf("key = %q, want a UUID", key)
	}
	want := map[string]any{
		"id":          1.0,
		"prefix":      key[:8],
		"hostname":    "192.0.2.9",
		"description": "<web & db>",
		"status":      "active",
		"created_at":  "2026-03-01T12:00:00Z",
		"revoked_at":  nil,
		"expires_at":  nil,
	}
	for field, w := range want {
		if v, ok := got[field]; !ok || v != w {
			t.Errorf("%s = %#v (present %v), want %#v", field, v, ok, w)
		}
	}
	if s, ok := got["scopes"].([]any); !ok || len(s) != 1 || s[0] != "submit" {
		t.Errorf("scopes = %#v, want [submit]", got["scopes"])
	}
	if !strings.Contains(r.stdout, `"<web & db>"`) {
		t.Errorf("description is escaped in %s, want it as typed", r.stdout)
	}
}

func TestGenerateQuiet(t *testing.T) {
	c := newCLI(t)
	r := c.run("generate", "--hostname", "127.0.0.1", "--quiet").mustSucceed(t)
	key := strings.TrimSuffix(r.stdout, "\n")
	if u, err := uuid.Parse(key); err != nil || u.String() != key || r.stdout != key+"\n" {
		t.Fatalf("stdout = %q, want a key and a newline only", r.stdout)
	}
	show := c.run("show", key).mustSucceed(t)
	if !strings.Contains(show.stdout, "Hostname:     127.0.0.1\n") {
		t.Errorf("show KEY =\n%s\nwant the key just made", show.stdout)
	}
}

func TestGenerateInvalidHostname(t *testing.T) {
	c := newCLI(t)
	r := c.run("generate", "--hostname", "x y")
	if r.code != exitError {
		t.Errorf("exit code = %d, want %d", r.code, exitError)
	}
	if want := "keyctl: invalid hostname \"x y\": want an IP address, a CIDR range or a DNS name\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Errorf("database exists after a rejected hostname (stat: %v); want none created", err)
	}
}

func TestGenerateMissingHostname(t *testing.T) {
	r := newCLI(t).run("generate")
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "keyctl: --hostname is required\n\nUsage:\n  keyctl generate --hostname HOST [flags]\n") {
		t.Errorf("exit %d, stderr %q; want %d, the error and the usage", r.code, r.stderr, exitUsage)
	}
}
