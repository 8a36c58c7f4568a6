package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/internal/testenv"
)

// TestImportedKeysAuthenticate imports keys by their hashes with keyctl
// import --hashed into the store of a running apiserver, on each backend,
// and checks that the clients holding their values are refused before and
// accepted after: a UUID key (hashed in its lower-case form, and sent in
// upper case) and a token of another system.
func TestImportedKeysAuthenticate(t *testing.T) {
	keyctl := buildKeyctl(t)
	for _, store := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "keys.db") }},
		{"PostgreSQL", func(t *testing.T) string { return testenv.PostgreSQL(t) }},
	} {
		t.Run(store.name, func(t *testing.T) {
			db, influx := store.db(t), testenv.InfluxDB(t)
			uuidKey, token := uuid.NewString(), "influx-token-of-another-system"
			uuidHash, tokenHash := sha256.Sum256([]byte(uuidKey)), sha256.Sum256([]byte(token))
			file := filepath.Join(t.TempDir(), "hashes.yaml")
			// Quoted: a prefix of digits alone (such as 78154337) is a
			// number to YAML.
			content := fmt.Sprintf(`keys:
  - name: web-1-telegraf
    hostname: 127.0.0.1
    measurements: [cpu]
    prefix: %q
    hash: %q
  - name: old-system
    hostname: 127.0.0.0/8
    hash: %q
`, uuidKey[:8], hex.EncodeToString(uuidHash[:]), hex.EncodeToString(tokenHash[:]))
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			r := startRun(t, "http", "--db", db, "--influx-url", influx.URL, "--influx-bucket", influx.Name,
				"--spool-dir", t.TempDir(), "--auth-fail-burst", "0")
			point := `{"measurement": "cpu", "field": "v", "value": 1}`
			if code, body := submit(t, r.base, token, point); code != 401 {
				t.Fatalf("before the import: %d %s, want 401", code, body)
			}
			out, err := exec.Command(keyctl, "--db", db, "import", "--hashed", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Imported: 2 created.") {
				t.Fatalf("keyctl import: %v\n%s", err, out)
			}
			for _, key := range []string{strings.ToUpper(uuidKey), token} {
				if code, body := submit(t, r.base, key, point); code != 200 {
					t.Errorf("imported key %.8s…: %d %s, want 200", key, code, body)
				}
			}
			if code, body := submit(t, r.base, uuidKey, `{"measurement": "mem", "field": "v", "value": 1}`); code != 403 {
				t.Errorf("the imported key's measurements do not apply: %d %s, want 403", code, body)
			}
		})
	}
}
