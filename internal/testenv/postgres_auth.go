package testenv

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequirePassword creates the role user with password on the server and
// makes the server ask that role for its password over TCP
// (scram-sha-256), as a production server would; other roles still get in
// without one. It returns the role's URL, with the password, and waits
// until the server has reloaded its configuration.
func (s *PostgresServer) RequirePassword(t testing.TB, user, password string) string {
	t.Helper()
	if err := psql(s.URL, fmt.Sprintf("CREATE ROLE %q LOGIN PASSWORD '%s'", user, strings.ReplaceAll(password, "'", "''"))); err != nil {
		t.Fatal(err)
	}
	hba := filepath.Join(s.dir, "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	rule := fmt.Sprintf("host all %q 127.0.0.1/32 scram-sha-256\n", user)
	if err := os.WriteFile(hba, append([]byte(rule), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := psql(s.URL, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	wrong := *u
	wrong.User = url.UserPassword(user, password+"-not")
	// The reload is asynchronous: wait until a wrong password is refused.
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(20 * time.Millisecond) {
		err := psql(wrong.String(), "SELECT 1")
		if err != nil && strings.Contains(err.Error(), "password authentication failed") {
			return u.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL still lets %s in without its password after %s: %v", user, startTimeout, err)
		}
	}
}
