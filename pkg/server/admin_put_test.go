package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// keyStores are the key stores the admin API's tests of keys as code run
// on: the gateway's SQLite file, and a PostgreSQL database of the test's.
var keyStores = []struct {
	name string
	use  func(t *testing.T, cfg *gatewaypkg.Config)
}{
	{"SQLite", func(*testing.T, *gatewaypkg.Config) {}},
	{"PostgreSQL", func(t *testing.T, cfg *gatewaypkg.Config) { cfg.DB = testenv.PostgreSQL(t) }},
}

// TestAdminPutByName runs PUT /admin/api/keys/by-name/{name} through
// create, the same again, update, replace, and the requests it refuses.
func TestAdminPutByName(t *testing.T) {
	for _, store := range keyStores {
		t.Run(store.name, func(t *testing.T) {
			g := startAdminWith(t, func(cfg *gatewaypkg.Config) { store.use(t, cfg) })
			testAdminPutByName(t, g)
		})
	}
}

func testAdminPutByName(t *testing.T, g *adminGateway) {
	ctx := context.Background()
	const path = "/admin/api/keys/by-name/web-1-telegraf"
	body := `{"hostname": "127.0.0.1", "description": "telegraf on web-1", "measurements": ["cpu"], "rate": 100}`

	r := g.do(t, "PUT", path, body)
	if r.status != 201 {
		t.Fatalf("create: got %d %s, want 201", r.status, r.body)
	}
	created := decode[keyjson.Put](t, r)
	if created.Action != "create" || created.Name != "web-1-telegraf" || created.ManagedBy != keystore.ManagedByHTTP ||
		created.Rate != 100 || created.Value == "" || r.header.Get("Location") != fmt.Sprintf("/admin/api/keys/%d", created.ID) {
		t.Fatalf("create answered %s", r.body)
	}
	if r := g.submit(t, created.Value, `{"measurement": "cpu", "field": "v", "value": 1}`); r.status != 200 {
		t.Errorf("the key PUT made does not submit: %d %s", r.status, r.body)
	}

	entries := func() int {
		all, err := g.keys.Audit(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	before := entries()
	r = g.do(t, "PUT", path, body)
	if again := decode[keyjson.Put](t, r); r.status != 200 || again.Action != "unchanged" || again.ID != created.ID || again.Value != "" {
		t.Errorf("the same PUT again: got %d %s, want 200 unchanged without a value", r.status, r.body)
	}
	if entries() != before {
		t.Errorf("an unchanged PUT wrote to the audit log")
	}

	// The body declares the key whole: what it leaves out is the default.
	r = g.do(t, "PUT", path, `{"hostname": "127.0.0.1", "rate": 50}`)
	if updated := decode[keyjson.Put](t, r); r.status != 200 || updated.Action != "update" || updated.ID != created.ID ||
		updated.Rate != 50 || updated.Description != "" || len(updated.Measurements) != 0 {
		t.Errorf("update: got %d %s", r.status, r.body)
	}
	r = g.do(t, "PUT", path, `{"name": "web-1-telegraf", "hostname": "127.0.0.2", "rate": 50}`)
	replaced := decode[keyjson.Put](t, r)
	if r.status != 201 || replaced.Action != "replace" || replaced.Replaces == nil || *replaced.Replaces != created.ID ||
		replaced.Hostname != "127.0.0.2" || replaced.Value == "" {
		t.Errorf("replace: got %d %s", r.status, r.body)
	}
	if old, _ := g.keys.Get(ctx, created.ID); old.RevokedAt.IsZero() {
		t.Errorf("the replaced key is not revoked")
	}

	// keyctl apply --prune never revokes what the admin API made.
	p, err := g.keys.Plan(ctx, nil, keystore.PlanOptions{ManagedBy: keystore.ManagedByApply, Prune: true})
	if err != nil || p.Changed() {
		t.Errorf("an empty apply with --prune plans %+v, %v; want nothing", p.Changes, err)
	}

	for _, tt := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"BadName", "/admin/api/keys/by-name/Web-1", `{"hostname": "127.0.0.1"}`, 400, `the name in the path \"Web-1\" must be lower-case`},
		{"OtherName", path, `{"name": "web-2", "hostname": "127.0.0.1"}`, 400, `\"name\" \"web-2\" in the body is not \"web-1-telegraf\"`},
		{"NoHostname", path, `{"rate": 5}`, 400, `the key has no \"hostname\"`},
		{"UnknownField", path, `{"hostname": "127.0.0.1",
 "rates": 5}`, 400, `the body:2:2: the key: unknown field \"rates\"`},
		{"ExpiresIn", path, `{"hostname": "127.0.0.1", "expires_in": "720h"}`, 400, `give \"expires_at\"`},
		{"PastExpiry", path, `{"hostname": "127.0.0.1", "expires_at": "2020-01-01T00:00:00Z"}`, 400, `\"expires_at\" 2020-01-01T00:00:00Z is in the past`},
		{"NotJSON", path, `hostname: 127.0.0.1`, 400, `the body is not JSON`},
		{"Hash", path, `{"hostname": "127.0.0.1", "hash": "` + strings.Repeat("ab", 32) + `"}`, 400, `\"hash\" and \"prefix\" are for keyctl import`},
		{"AdminForever", "/admin/api/keys/by-name/ops", `{"hostname": "127.0.0.1", "scopes": ["admin"]}`, 400, `an admin key must expire within`},
		{"AdminWide", "/admin/api/keys/by-name/ops", `{"hostname": "10.0.0.0/8", "scopes": ["admin"], "expires_at": "` +
			g.clock.Now().Add(24*time.Hour).Format(time.RFC3339) + `"}`, 400, `is wider than a /24`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := entries()
			r := g.do(t, "PUT", tt.path, tt.body)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("got %d %s, want %d containing %s", r.status, r.body, tt.status, tt.want)
			}
			if entries() != before {
				t.Errorf("a refused PUT wrote to the audit log")
			}
		})
	}
	r = g.do(t, "PUT", "/admin/api/keys/by-name/ops", `{"hostname": "127.0.0.1", "scopes": ["admin"], "expires_at": "`+
		g.clock.Now().Add(24*time.Hour).Format(time.RFC3339)+`"}`)
	if r.status != 201 {
		t.Errorf("an admin key within the limits: got %d %s, want 201", r.status, r.body)
	}
	r = g.do(t, "PUT", path, `{"hostname": "127.0.0.1"}`, "Content-Type", "text/plain")
	if r.status != 415 {
		t.Errorf("a PUT of text/plain: got %d, want 415", r.status)
	}
}

// TestAnsiblePlaybook runs the playbook of docs/ansible with Ansible
// against a gateway's admin API, twice, and checks that the first run
// gives each host a working key, written to its key file, and that the
// second changes nothing.
func TestAnsiblePlaybook(t *testing.T) {
	playbook, err := filepath.Abs("../../docs/ansible/metricgate-keys.yml")
	if err != nil {
		t.Fatal(err)
	}
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		testenv.Missing(t, "ansible-playbook is not installed (scripts/deps.sh installs ansible-core)")
	}
	g := startAdmin(t, nil)
	dir := t.TempDir()
	inventory := filepath.Join(dir, "inventory.ini")
	var hosts strings.Builder
	hosts.WriteString("[metrics_clients]\n")
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(&hosts, "web-%d ansible_host=127.0.0.%d ansible_connection=local metricgate_key_file=%s\n",
			i, i, filepath.Join(dir, fmt.Sprintf("web-%d.env", i)))
	}
	if err := os.WriteFile(inventory, []byte(hosts.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ansible, "-i", inventory, playbook,
			"-e", "metricgate_admin_url="+g.gateway.admin, "-e", "metricgate_admin_key="+g.adminKey,
			"-e", "ansible_python_interpreter=/usr/bin/python3")
		cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+filepath.Join(dir, ".ansible"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
			"ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_RETRY_FILES_ENABLED=False")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		if strings.Contains(string(out), g.adminKey) {
			t.Errorf("Ansible's output shows the admin key")
		}
		return string(out)
	}
	recap := regexp.MustCompile(`(?m)^(web-\d)\s*:\s*ok=(\d+)\s+changed=(\d+)`)

	out := run()
	if got := recap.FindAllStringSubmatch(out, -1); len(got) != 2 || got[0][3] != "2" || got[1][3] != "2" {
		t.Fatalf("first run's recap = %v, want both hosts changed twice (key and file)\n%s", got, out)
	}
	for i := 1; i <= 2; i++ {
		host, name := fmt.Sprintf("127.0.0.%d", i), fmt.Sprintf("web-%d-telegraf", i)
		k, err := g.keys.GetByName(context.Background(), name)
		if err != nil || k.Hostname != host || k.Rate != 100 || k.Description != fmt.Sprintf("telegraf on web-%d", i) {
			t.Errorf("key %s = %+v, %v; want one for %s with the playbook's policy", name, k, err, host)
		}
		file := filepath.Join(dir, fmt.Sprintf("web-%d.env", i))
		data, err := os.ReadFile(file)
		value := strings.TrimSpace(strings.TrimPrefix(string(data), "METRICGATE_API_KEY="))
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", file, fi.Mode().Perm())
		}
		if found, err := g.keys.Find(context.Background(), value); err != nil || found.ID != k.ID {
			t.Errorf("%s holds %q, not the value of key %s (%v)", file, data, name, err)
		}
		if strings.Contains(out, value) {
			t.Errorf("Ansible's output shows the key of %s", name)
		}
	}
	before, _ := g.keys.Audit(context.Background(), 0, 0)

	out = run()
	if got := recap.FindAllStringSubmatch(out, -1); len(got) != 2 || got[0][3] != "0" || got[1][3] != "0" {
		t.Errorf("second run's recap = %v, want no change\n%s", got, out)
	}
	if after, _ := g.keys.Audit(context.Background(), 0, 0); len(after) != len(before) {
		t.Errorf("the second run wrote %d audit entries, want none", len(after)-len(before))
	}
}
