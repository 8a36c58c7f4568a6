package keyjson_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestNew(t *testing.T) {
	created := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)
	tests := []struct {
		name string
		key  keystore.Key
		want string
	}{
		{"Bare", keystore.Key{ID: 1, Prefix: "3f1c2a4b", Hostname: "web-1", CreatedAt: created},
			`{"id":1,"name":"","prefix":"3f1c2a4b","hostname":"web-1","description":"","scopes":[],"measurements":[],"rate":0,"burst":0,` +
				`"status":"active","created_at":"2026-06-01T10:00:00Z","revoked_at":null,"expires_at":null,"replaced_by":null,` +
				`"last_used_at":null,"last_used_addr":"","requests":0,"points":0,"managed_by":"","bucket":"","max_series":0,` +
				`"quarantined":false,"quarantined_at":null,"quarantine_reason":""}`},
		{"Full", keystore.Key{ID: 2, Name: "batch-1", ManagedBy: "apply", Prefix: "b49a6bfd", Hostname: "10.0.0.0/24", Description: "batch", Scopes: []string{"submit", "admin"},
			Measurements: []string{"cpu"}, Rate: 2.5, Burst: 50, CreatedAt: created, RevokedAt: now, ExpiresAt: now.Add(time.Hour),
			ReplacedBy: 3, LastUsedAt: created.Add(time.Minute).In(time.FixedZone("CET", 3600)), LastUsedAddr: "10.0.0.7", Requests: 4, Points: 40,
			Bucket: "tenant-a/week", MaxSeries: 500, QuarantinedAt: created.Add(2 * time.Minute), QuarantineReason: "InfluxDB refused 100 of its points"},
			`{"id":2,"name":"batch-1","prefix":"b49a6bfd","hostname":"10.0.0.0/24","description":"batch","scopes":["submit","admin"],"measurements":["cpu"],` +
				`"rate":2.5,"burst":50,"status":"revoked","created_at":"2026-06-01T10:00:00Z","revoked_at":"2026-06-01T11:00:00Z",` +
				`"expires_at":"2026-06-01T12:00:00Z","replaced_by":3,"last_used_at":"2026-06-01T10:01:00Z","last_used_addr":"10.0.0.7",` +
				`"requests":4,"points":40,"managed_by":"apply","bucket":"tenant-a/week","max_series":500,"quarantined":true,` +
				`"quarantined_at":"2026-06-01T10:02:00Z","quarantine_reason":"InfluxDB refused 100 of its points"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(keyjson.New(tt.key, now))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestValueOnlyWhereMade(t *testing.T) {
	created := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	nk := keystore.Key{ID: 3, Prefix: "c6d89965", Hostname: "web-1", CreatedAt: created}
	old := keystore.Key{ID: 2, ExpiresAt: created.Add(time.Hour)}
	b, err := json.Marshal(keyjson.NewRotated(nk, "c6d89965-0f1e-48cc-ac0f-9c07e9e22c14", old, created))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["key"] != "c6d89965-0f1e-48cc-ac0f-9c07e9e22c14" || got["id"] != float64(3) || got["old_key_id"] != float64(2) ||
		got["old_key_expires_at"] != "2026-06-01T11:00:00Z" {
		t.Errorf("rotated key encodes as %s", b)
	}
	if b, _ := json.Marshal(keyjson.List([]keystore.Key{nk}, created)); containsKey(t, b) {
		t.Errorf("a listed key encodes with a value: %s", b)
	}
	if b, _ := json.Marshal(keyjson.List(nil, created)); string(b) != "[]" {
		t.Errorf("no keys encode as %s, want []", b)
	}
	if b, _ := json.Marshal(keyjson.Audit(nil)); string(b) != "[]" {
		t.Errorf("no audit entries encode as %s, want []", b)
	}
}

func containsKey(t *testing.T, b []byte) bool {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if _, ok := k["key"]; ok {
			return true
		}
	}
	return false
}

func TestAudit(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	b, err := json.Marshal(keyjson.Audit([]keystore.AuditEntry{
		{ID: 2, At: at, Actor: "admin-api:key 1 from 127.0.0.1", Node: "gw-2", KeyID: 7, Action: "revoke"},
		{ID: 1, At: at, Actor: "keyctl:alice@admin-1", Action: "generate", Detail: "hostname=web-1"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"id":2,"at":"2026-06-01T10:00:00Z","actor":"admin-api:key 1 from 127.0.0.1","node":"gw-2","key_id":7,"action":"revoke","detail":""},` +
		`{"id":1,"at":"2026-06-01T10:00:00Z","actor":"keyctl:alice@admin-1","key_id":null,"action":"generate","detail":"hostname=web-1"}]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
