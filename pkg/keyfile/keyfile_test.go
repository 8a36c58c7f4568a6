package keyfile_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const good = `# every field
keys:
  - name: web-1-telegraf
    hostname: Web-1.Example.COM
    description: "telegraf on web-1"
    scopes: [submit]
    measurements: [cpu, mem]
    rate: 100
    burst: 500
    bucket: tenant-a/week
    max_series: 2000
    expires_at: 2027-01-01T00:00:00Z
  - name: batch
    hostname: 10.0.0.7/24
    measurements: []
`

func TestParseDefinitions(t *testing.T) {
	entries, err := keyfile.Parse([]byte(good), "keys.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	defs, err := keyfile.Definitions(entries, "keys.yaml", now)
	if err != nil {
		t.Fatalf("Definitions: %v", err)
	}
	want := []keystore.NewKey{
		{Name: "web-1-telegraf", Hostname: "web-1.example.com", Description: "telegraf on web-1", Scopes: []string{"submit"},
			Measurements: []string{"cpu", "mem"}, Rate: 100, Burst: 500, Bucket: "tenant-a/week", MaxSeries: 2000,
			ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "batch", Hostname: "10.0.0.0/24", Measurements: []string{}},
	}
	if !reflect.DeepEqual(defs, want) {
		t.Errorf("got  %+v\nwant %+v", defs, want)
	}
	if entries[0].Line != 3 || entries[1].Line != 13 {
		t.Errorf("entries start at lines %d and %d, want 3 and 13", entries[0].Line, entries[1].Line)
	}

	// The same keys in JSON.
	const asJSON = `{"keys": [
	{"name": "web-1-telegraf", "hostname": "Web-1.Example.COM", "description": "telegraf on web-1", "scopes": ["submit"],
	 "measurements": ["cpu", "mem"], "rate": 100, "burst": 500, "bucket": "tenant-a/week", "max_series": 2000,
	 "expires_at": "2027-01-01T00:00:00Z"},
	{"name": "batch", "hostname": "10.0.0.7/24", "measurements": []}
]}`
	entries, err = keyfile.Parse([]byte(asJSON), "keys.json")
	if err != nil {
		t.Fatalf("Parse JSON: %v", err)
	}
	if defs, err := keyfile.Definitions(entries, "keys.json", now); err != nil || !reflect.DeepEqual(defs, want) {
		t.Errorf("from JSON: got %+v, %v\nwant %+v", defs, err, want)
	}
}

// TestBadFiles checks that each fault is an error wrapping ErrInvalid that
// names its place and the entry.
func TestBadFiles(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"Indentation", "keys:\n  - name: a\n   hostname: b\n", "keys.yaml:3:4: value is not allowed in this context"},
		{"Unclosed", "keys:\n  - name: [a\n", "keys.yaml:2:11: sequence end token ']' not found"},
		{"Tab", "keys:\n\t- name: a\n", "keys.yaml:2:1: found character '\t' that cannot start any token"},
		{"BrokenJSON", "{\"keys\": [\n  {\"name\": \"a\",\n   \"hostname\" \"b\"}\n]}\n", "keys.yaml:3:"},
		{"Empty", "", "keys.yaml is empty"},
		{"OnlyComments", "# nothing\n", "keys.yaml is empty"},
		{"NoKeys", "key:\n  - name: a\n", `keys.yaml:1:1: unknown field "key": a key file has only "keys"`},
		{"KeysNotAList", "keys: web-1\n", `keys.yaml:1:7: "keys" must be a list of keys, got "web-1"`},
		{"TwoDocuments", "keys: []\n---\nkeys: []\n", "keys.yaml:3:1: a second document"},
		{"UnknownField", "keys:\n  - name: web-1\n    hostname: web-1\n    bogus: 1\n",
			`keys.yaml:4:5: entry "web-1": unknown field "bogus"; the fields are name, hostname,`},
		{"UnknownFieldBeforeName", "keys:\n  - bogus: 1\n    name: web-1\n    hostname: web-1\n", `keys.yaml:2:5: entry "web-1": unknown field "bogus"`},
		{"ExpiresIn", "keys:\n  - name: web-1\n    hostname: web-1\n    expires_in: 720h\n",
			`keys.yaml:4:5: entry "web-1": unknown field "expires_in": a file says when a key expires`},
		{"FieldTwice", "keys:\n  - name: web-1\n    hostname: web-1\n    hostname: web-2\n", `keys.yaml:4:5: mapping key "hostname" already defined at [3:5]`},
		{"RateNotNumber", "keys:\n  - name: web-1\n    hostname: web-1\n    rate: \"5\"\n", `keys.yaml:4:11: entry "web-1": "rate" must be a number, got "5"`},
		{"BurstFraction", "keys:\n  - name: web-1\n    hostname: web-1\n    burst: 1.5\n", `keys.yaml:4:12: entry "web-1": "burst" must be a whole number, got 1.5`},
		{"ScopesNotList", "keys:\n  - name: web-1\n    hostname: web-1\n    scopes: submit\n", `keys.yaml:4:13: entry "web-1": "scopes" must be a list of text`},
		{"DescriptionNumber", "keys:\n  - name: web-1\n    hostname: web-1\n    description: 42\n", `keys.yaml:4:18: entry "web-1": "description" must be text, got 42`},
		{"NoName", "keys:\n  - hostname: web-1\n", `keys.yaml:2:5: entry 1 has no "name"`},
		{"NoHostname", "keys:\n  - name: web-1\n", `entry "web-1" has no "hostname"`},
		{"EntryNotMapping", "keys:\n  - web-1\n", `keys.yaml:2:5: entry 1 must be a mapping of fields, got "web-1"`},
		{"Alias", "keys:\n  - &a\n    name: web-1\n    hostname: web-1\n", `entry 1 must be a mapping of fields`},
		{"ShortHash", "keys:\n  - name: web-1\n    hostname: web-1\n    hash: abc\n",
			`keys.yaml:4:11: entry "web-1": "hash" must be a SHA-256 in hex, 64 digits 0-9 and a-f, got 3 characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyfile.Parse([]byte(tt.file), "keys.yaml")
			if !errors.Is(err, keyfile.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v\nwant ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestBadEntries checks the errors of entries that parse but define no
// key the store would keep.
func TestBadEntries(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"Duplicate", "keys:\n  - name: web-1\n    hostname: web-1\n  - name: web-1\n    hostname: web-2\n",
			`keys.yaml:4: entry "web-1": the entry at line 2 has the same name: names are unique`},
		{"BadHost", "keys:\n  - name: web-1\n    hostname: not a host\n", `keys.yaml:2: entry "web-1": invalid hostname "not a host"`},
		{"BadName", "keys:\n  - name: Web-1\n    hostname: web-1\n", `keys.yaml:2: entry "Web-1": invalid key policy: "name" "Web-1" must be lower-case`},
		{"Past", "keys:\n  - name: web-1\n    hostname: web-1\n    expires_at: 2020-01-01T00:00:00Z\n",
			`keys.yaml:2: entry "web-1": invalid key policy: "expires_at" 2020-01-01T00:00:00Z is in the past`},
		{"BadScope", "keys:\n  - name: web-1\n    hostname: web-1\n    scopes: [root]\n", `entry "web-1": invalid scope "root" in "scopes"`},
		{"NoScopes", "keys:\n  - name: web-1\n    hostname: web-1\n    scopes: []\n", `entry "web-1": invalid key policy: "scopes" must name at least one scope`},
		{"InternalBucket", "keys:\n  - name: web-1\n    hostname: web-1\n    bucket: _internal\n",
			`entry "web-1": invalid key policy: "bucket" "_internal" starts with "_"`},
		{"TooManySeries", "keys:\n  - name: web-1\n    hostname: web-1\n    max_series: 2000000\n",
			`entry "web-1": invalid key policy: "max_series" must be between 0 (the gateway's default) and 1000000`},
		{"Hash", "keys:\n  - name: web-1\n    hostname: web-1\n    hash: " + strings.Repeat("ab", 32) + "\n",
			`entry "web-1": "hash" and "prefix" are for keyctl import --hashed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := keyfile.Parse([]byte(tt.file), "keys.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err = keyfile.Definitions(entries, "keys.yaml", now)
			if !errors.Is(err, keyfile.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Definitions error = %v\nwant ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	// Every entry at fault is reported, not only the first.
	entries, _ := keyfile.Parse([]byte("keys:\n  - name: a\n    hostname: not a host\n  - name: b\n    hostname: web-1\n    rate: -1\n"), "keys.yaml")
	_, err := keyfile.Definitions(entries, "keys.yaml", now)
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "keys.yaml:2:") || !strings.HasPrefix(lines[1], "keys.yaml:4:") {
		t.Errorf("two bad entries gave %q, want a line naming each", err)
	}
}

func TestHashed(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	entries, err := keyfile.Parse([]byte("keys:\n  - name: web-1\n    hostname: web-1\n    prefix: 0f0f0f0f\n    hash: "+hash+"\n"), "hashes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyfile.Hashed(entries, "hashes.yaml", now)
	if err != nil || len(keys) != 1 || keys[0].Hash[0] != 0x0f || keys[0].Hash[31] != 0x0f || keys[0].Prefix != "0f0f0f0f" || keys[0].Name != "web-1" {
		t.Fatalf("Hashed = %+v, %v", keys, err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"NoHash", "keys:\n  - name: web-1\n    hostname: web-1\n", `hashes.yaml:2: entry "web-1": no "hash"`},
		{"LongHash", "keys:\n  - name: web-1\n    hostname: web-1\n    hash: " + hash + "00\n", `hashes.yaml:4:11: entry "web-1": "hash" must be a SHA-256 in hex, 64 digits 0-9 and a-f, got 66 characters`},
		{"SameHash", "keys:\n  - name: a\n    hostname: web-1\n    hash: " + hash + "\n  - name: b\n    hostname: web-1\n    hash: " + hash + "\n",
			`hashes.yaml:5: entry "b": the entry at line 2 has the same "hash"`},
		{"BadPrefix", "keys:\n  - name: a\n    hostname: web-1\n    prefix: ABCDEF12\n", `hashes.yaml:4:13: entry "a": "prefix" must be the key's first 8 characters, lower-case hex`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := keyfile.Parse([]byte(tt.file), "hashes.yaml")
			if err == nil {
				_, err = keyfile.Hashed(entries, "hashes.yaml", now)
			}
			if !errors.Is(err, keyfile.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestWriteRoundTrip writes keys of every kind, in both formats, and
// checks that reading the file back defines the same keys.
func TestWriteRoundTrip(t *testing.T) {
	keys := []keystore.Key{
		{ID: 1, Name: "web-1", Hostname: "web-1.example.com", Description: "yes", Scopes: []string{"submit", "admin"},
			Measurements: []string{"cpu", "123"}, Rate: 2.5, Burst: 10, ExpiresAt: now.Add(time.Hour + 123*time.Nanosecond), Prefix: "0f0f0f0f",
			Bucket: "tenant-a", MaxSeries: 300},
		{ID: 2, Name: "db-1", Hostname: "2001:db8::1", Description: "42", Scopes: []string{"submit"}, Measurements: []string{}},
		{ID: 3, Name: "null", Hostname: "10.0.0.0/24", Description: `quote " and: colon # hash`, Scopes: []string{"submit"}},
	}
	hashes := map[int64][]byte{1: bytes.Repeat([]byte{0x0f}, 32)}
	for _, f := range []keyfile.Format{keyfile.YAML, keyfile.JSON} {
		t.Run(string(f), func(t *testing.T) {
			var b bytes.Buffer
			if err := keyfile.Write(&b, keys, nil, f); err != nil {
				t.Fatal(err)
			}
			entries, err := keyfile.Parse(b.Bytes(), "export")
			if err != nil {
				t.Fatalf("Parse of\n%s: %v", b.String(), err)
			}
			defs, err := keyfile.Definitions(entries, "export", now)
			if err != nil {
				t.Fatalf("Definitions: %v\n%s", err, b.String())
			}
			for i, k := range keys {
				want := keystore.NewKey{Name: k.Name, Hostname: k.Hostname, Description: k.Description, Scopes: k.Scopes,
					Measurements: k.Measurements, Rate: k.Rate, Burst: k.Burst, ExpiresAt: k.ExpiresAt, Bucket: k.Bucket, MaxSeries: k.MaxSeries}
				if want.Measurements == nil {
					want.Measurements = nil
				}
				got := defs[i]
				if len(got.Measurements) == 0 && len(want.Measurements) == 0 {
					got.Measurements, want.Measurements = nil, nil
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("key %d read back as %+v, want %+v\n%s", k.ID, got, want, b.String())
				}
			}
			b.Reset()
			if err := keyfile.Write(&b, keys, hashes, f); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), strings.Repeat("0f", 32)) || strings.Count(b.String(), "prefix") != 1 {
				t.Errorf("with hashes, key 1 lacks its hash or prefix:\n%s", b.String())
			}
		})
	}
}

func TestParseEntry(t *testing.T) {
	e, err := keyfile.ParseEntry([]byte(`{"hostname": "10.0.0.7", "rate": 5, "measurements": ["cpu"]}`))
	if err != nil || e.Hostname != "10.0.0.7" || *e.Rate != 5 || e.Name != "" {
		t.Fatalf("ParseEntry = %+v, %v", e, err)
	}
	_, err = keyfile.ParseEntry([]byte(`{"hostname": "10.0.0.7", "expires_in": "720h"}`))
	if !errors.Is(err, keyfile.ErrInvalid) || !strings.Contains(err.Error(), `the body:1:26: the key: unknown field "expires_in"`) {
		t.Errorf("ParseEntry(expires_in) error = %v", err)
	}
	if _, err := keyfile.ParseEntry([]byte(`{"rate": 5}`)); err == nil || !strings.Contains(err.Error(), `the key has no "hostname"`) {
		t.Errorf("ParseEntry(no hostname) error = %v", err)
	}
}

// FuzzParse checks that no input makes Parse or Definitions panic, and
// that every failure wraps ErrInvalid.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"keys": [{"name": "a", "hostname": "b", "rate": 1e400}]}`))
	f.Add([]byte("keys:\n  - name: a\n    hostname: b\n    burst: 18446744073709551615\n"))
	f.Add([]byte("keys: [&a {name: x}, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := keyfile.Parse(data, "fuzz")
		if err != nil {
			if !errors.Is(err, keyfile.ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if _, err := keyfile.Definitions(entries, "fuzz", now); err != nil && !errors.Is(err, keyfile.ErrInvalid) {
			t.Fatalf("Definitions error %v does not wrap ErrInvalid", err)
		}
	})
}
