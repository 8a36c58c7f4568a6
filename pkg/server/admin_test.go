package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
)

// adminGateway is a gateway whose key store and admin API share a clock,
// with an admin key bound to 127.0.0.1.
type adminGateway struct {
	*gateway
	clock    *testenv.Clock
	admin    keystore.Key
	adminKey string
}

func startAdmin(t *testing.T, mutate func(*server.Config)) *adminGateway {
	t.Helper()
	return startAdminWith(t, func(cfg *gatewaypkg.Config) {
		if mutate != nil {
			mutate(&cfg.Server)
		}
	})
}

// startAdminWith is startAdmin with the whole gateway's configuration
// changed by mutate, such as its key store, after the clock is set.
func startAdminWith(t *testing.T, mutate func(*gatewaypkg.Config)) *adminGateway {
	t.Helper()
	c := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		cfg.Server.Now = c.Now
		mutate(cfg)
	})
	g.keys.Now = c.Now
	k, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	return &adminGateway{gateway: g, clock: c, admin: k, adminKey: key}
}

// do sends an admin API request with the admin key as a bearer token. A
// non-empty body is sent as application/json; headers, name and value
// pairs, are set after that, and an empty value deletes the header.
func (g *adminGateway) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	return g.doAs(t, "Bearer "+g.adminKey, method, path, body, headers...)
}

func (g *adminGateway) doAs(t *testing.T, authorization, method, path, body string, headers ...string) response {
	t.Helper()
	contentType := ""
	if body != "" {
		contentType = "application/json"
	}
	return request(t, method, g.gateway.admin+path, body, append([]string{"Authorization", authorization, "Content-Type", contentType}, headers...)...)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return v
}

func TestAdminAuth(t *testing.T) {
	g := startAdmin(t, nil)
	ctx := context.Background()
	_, submitKey, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
	_, elsewhere, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "10.0.0.9", Scopes: []string{"admin"}})
	revoked, revokedKey, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}})
	g.keys.Revoke(ctx, revoked.ID)

	const unauthorized = `{"error":"Unauthorized"}`
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
		wantBody   string
	}{
		{"NoKey", nil, 401, unauthorized},
		{"UnknownKey", []string{"Authorization", "Bearer 5f0a5d0e-95a4-4c4e-8d4f-3c0b1d2e3f40"}, 401, unauthorized},
		{"NotAKey", []string{"Authorization", "Bearer nope"}, 401, unauthorized},
		{"OtherScheme", []string{"Authorization", "Basic " + g.adminKey}, 401, unauthorized},
		{"RevokedAdminKey", []string{"Authorization", "Bearer " + revokedKey}, 401, unauthorized},
		{"AdminKeyOfAnotherHost", []string{"Authorization", "Bearer " + elsewhere}, 401, unauthorized},
		{"SubmitKey", []string{"Authorization", "Bearer " + submitKey}, 403,
			`{"error":"Forbidden","message":"this key lacks the \"admin\" scope"}`},
		{"SubmitKeyAsXAPIKey", []string{"X-API-Key", submitKey}, 403,
			`{"error":"Forbidden","message":"this key lacks the \"admin\" scope"}`},
		{"Bearer", []string{"Authorization", "Bearer " + g.adminKey}, 200, ""},
		{"BearerAnyCase", []string{"Authorization", "bearer  " + strings.ToUpper(g.adminKey)}, 200, ""},
		{"XAPIKey", []string{"X-API-Key", g.adminKey}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.doAs(t, "", "GET", "/admin/api/keys", "", tt.headers...)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantBody != "" && strings.TrimSpace(r.body) != tt.wantBody {
				t.Errorf("got body %s, want %s", r.body, tt.wantBody)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 has no WWW-Authenticate header")
			}
		})
	}
	if line := lastLogLine(t, g.logs); line["status"] != float64(200) {
		t.Errorf("last log line %v, want the 200", line)
	}
}

// TestAdminThrottled checks that failed admin authentications count with
// the write endpoints' throttle: an address that keeps failing on either
// listener gets 429 on both for a bad key, while the admin's good key
// still passes.
func TestAdminThrottled(t *testing.T) {
	g := startAdmin(t, func(cfg *server.Config) { cfg.AuthFailBurst = 2 })
	const bad = "Bearer 5f0a5d0e-95a4-4c4e-8d4f-3c0b1d2e3f40"
	if r := g.doAs(t, bad, "GET", "/admin/api/keys", ""); r.status != 401 {
		t.Fatalf("bad key: got %d, want 401", r.status)
	}
	if r := g.submit(t, "5f0a5d0e-95a4-4c4e-8d4f-3c0b1d2e3f40", onePoint); r.status != 401 {
		t.Fatalf("bad key on the ingest listener: got %d, want 401", r.status)
	}
	if r := g.doAs(t, bad, "GET", "/admin/api/keys", ""); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("bad key after two failures: got %d %v %s, want 429 with Retry-After", r.status, r.header, r.body)
	}
	if r := g.do(t, "GET", "/admin/api/keys", ""); r.status != 200 {
		t.Fatalf("the admin's good key from the throttled address: got %d %s, want 200", r.status, r.body)
	}
}

// keyFields are the fields of keyctl's JSON view of a key, which the admin
// API answers with.
var keyFields = []string{"bucket", "burst", "created_at", "description", "expires_at", "hostname", "id", "last_used_addr",
	"last_used_at", "managed_by", "max_series", "measurements", "name", "points", "prefix", "quarantine_reason", "quarantined",
	"quarantined_at", "rate", "replaced_by", "requests", "revoked_at", "scopes", "status"}

func fieldNames(m map[string]any) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// TestAdminKeyLifecycle creates, lists, shows, updates, rotates and revokes
// a key over HTTP and reads its audit log, checking each answer against the
// store.
func TestAdminKeyLifecycle(t *testing.T) {
	g := startAdmin(t, nil)
	ctx := context.Background()
	now := g.clock.Now()

	r := g.do(t, "POST", "/admin/api/keys", `{"hostname": "Web-1.Example.com.", "description": "web one",
		"scopes": ["submit"], "measurements": ["cpu", " mem "], "rate": 2.5, "burst": 50, "expires_in": "720h",
		"bucket": "tenant-a/week", "max_series": 500}`)
	if r.status != 201 {
		t.Fatalf("create: got %d %s, want 201", r.status, r.body)
	}
	created := decode[map[string]any](t, r)
	if got, want := fieldNames(created), append(slices.Clone(keyFields), "key"); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("create answered fields %v, want keyctl's %v and key", got, want)
	}
	gen := decode[keyjson.Generated](t, r)
	k, err := g.keys.Find(ctx, gen.Value)
	if err != nil {
		t.Fatalf("the created key's value is not a key: %v", err)
	}
	if want := keyjson.New(k, now); jsonOf(gen.Key) != jsonOf(want) {
		t.Errorf("create answered %+v, want the stored %+v", gen.Key, want)
	}
	if k.Hostname != "web-1.example.com" || !slices.Equal(k.Measurements, []string{"cpu", "mem"}) || k.Rate != 2.5 ||
		k.Burst != 50 || !k.ExpiresAt.Equal(now.Add(720*time.Hour)) || k.Description != "web one" ||
		k.Bucket != "tenant-a/week" || k.MaxSeries != 500 {
		t.Errorf("stored key %+v does not match the request", k)
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/admin/api/keys/%d", k.ID) {
		t.Errorf("Location %q, want /admin/api/keys/%d", loc, k.ID)
	}

	t.Run("List", func(t *testing.T) {
		r := g.do(t, "GET", "/admin/api/keys", "")
		if r.status != 200 || strings.Contains(r.body, gen.Value) || strings.Contains(r.body, `"key"`) {
			t.Fatalf("list: got %d %s, want 200 without any key value", r.status, r.body)
		}
		list := decode[[]keyjson.Key](t, r)
		if len(list) != 2 || list[0].ID != g.admin.ID || list[1].ID != k.ID {
			t.Errorf("list = %+v, want the admin key and the new one", list)
		}
		r = g.do(t, "GET", "/admin/api/keys?hostname=WEB-1.example.com", "")
		if list := decode[[]keyjson.Key](t, r); len(list) != 1 || list[0].ID != k.ID {
			t.Errorf("list by hostname = %+v, want the new key only", list)
		}
	})
	t.Run("Show", func(t *testing.T) {
		r := g.do(t, "GET", fmt.Sprintf("/admin/api/keys/%d", k.ID), "")
		if r.status != 200 {
			t.Fatalf("show: got %d %s", r.status, r.body)
		}
		if got := fieldNames(decode[map[string]any](t, r)); !slices.Equal(got, keyFields) {
			t.Errorf("show answered fields %v, want keyctl's %v", got, keyFields)
		}
		if got := decode[keyjson.Key](t, r); jsonOf(got) != jsonOf(gen.Key) {
			t.Errorf("show = %+v, want %+v", got, gen.Key)
		}
	})
	t.Run("Update", func(t *testing.T) {
		r := g.do(t, "PATCH", fmt.Sprintf("/admin/api/keys/%d", k.ID),
			`{"description": "web one, for 90 days", "expires_in": "2160h", "scopes": ["submit", "admin"], "measurements": [], "rate": 0, "burst": 7,
			"bucket": "", "max_series": 20}`)
		if r.status != 200 {
			t.Fatalf("update: got %d %s", r.status, r.body)
		}
		got := decode[keyjson.Key](t, r)
		stored, _ := g.keys.Get(ctx, k.ID)
		if jsonOf(got) != jsonOf(keyjson.New(stored, now)) {
			t.Errorf("update answered %+v, want the stored %+v", got, keyjson.New(stored, now))
		}
		if stored.Description != "web one, for 90 days" || !stored.ExpiresAt.Equal(now.Add(2160*time.Hour)) || !slices.Equal(stored.Scopes, []string{"submit", "admin"}) ||
			len(stored.Measurements) != 0 || stored.Rate != 0 || stored.Burst != 7 || stored.Bucket != "" || stored.MaxSeries != 20 {
			t.Errorf("stored after update: %+v", stored)
		}
		at := now.Add(48 * time.Hour).Format(time.RFC3339)
		r = g.do(t, "PATCH", fmt.Sprintf("/admin/api/keys/%d", k.ID), `{"expires_at": "`+at+`"}`)
		if got := decode[keyjson.Key](t, r); r.status != 200 || got.ExpiresAt == nil || *got.ExpiresAt != at {
			t.Errorf("update expires_at: got %d %s, want it expiring at %s", r.status, r.body, at)
		}
	})
	var rotated keyjson.Rotated
	t.Run("Rotate", func(t *testing.T) {
		r := g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/rotate", k.ID), `{"grace": "1h"}`)
		if r.status != 201 {
			t.Fatalf("rotate: got %d %s", r.status, r.body)
		}
		rotated = decode[keyjson.Rotated](t, r)
		nk, err := g.keys.Find(ctx, rotated.Value)
		if err != nil || nk.ID != rotated.ID || rotated.OldKeyID != k.ID || nk.Hostname != k.Hostname {
			t.Fatalf("rotate answered %+v; the store has %+v, %v", rotated, nk, err)
		}
		if want := now.Add(time.Hour).Format(time.RFC3339); rotated.OldKeyExpiresAt != want {
			t.Errorf("old key expires at %s, want %s", rotated.OldKeyExpiresAt, want)
		}
		r = g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/rotate", rotated.ID), "")
		if r.status != 201 || decode[keyjson.Rotated](t, r).OldKeyExpiresAt != now.Add(24*time.Hour).Format(time.RFC3339) {
			t.Errorf("rotate without a body: got %d %s, want 201 and the default grace of 24h", r.status, r.body)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		r := g.do(t, "DELETE", fmt.Sprintf("/admin/api/keys/%d", k.ID), "")
		if got := decode[keyjson.Key](t, r); r.status != 200 || got.Status != "revoked" || got.RevokedAt == nil {
			t.Fatalf("revoke: got %d %s, want 200 and a revoked key", r.status, r.body)
		}
		r = g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/revoke", k.ID), "")
		if r.status != 200 || decode[keyjson.Key](t, r).Status != "revoked" {
			t.Errorf("revoke again: got %d %s, want 200 and the key as it is", r.status, r.body)
		}
		r = g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/revoke", rotated.ID), "{}")
		if r.status != 200 || decode[keyjson.Key](t, r).Status != "revoked" {
			t.Errorf("revoke with a body: got %d %s", r.status, r.body)
		}
		r = g.do(t, "GET", "/admin/api/keys?status=revoked", "")
		if list := decode[[]keyjson.Key](t, r); len(list) != 2 || list[0].ID != k.ID || list[1].ID != rotated.ID {
			t.Errorf("list of revoked keys = %+v, want keys %d and %d", list, k.ID, rotated.ID)
		}
	})
	t.Run("RotateRevoked", func(t *testing.T) {
		r := g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/rotate", k.ID), `{"grace": "0s"}`)
		want := fmt.Sprintf(`{"error":"only an active key can be rotated: key %d is revoked"}`, k.ID)
		if r.status != 409 || strings.TrimSpace(r.body) != want {
			t.Errorf("rotate a revoked key: got %d %s, want 409 %s", r.status, r.body, want)
		}
	})
	t.Run("Audit", func(t *testing.T) {
		r := g.do(t, "GET", fmt.Sprintf("/admin/api/keys/%d/audit", k.ID), "")
		if r.status != 200 {
			t.Fatalf("audit: got %d %s", r.status, r.body)
		}
		actor := fmt.Sprintf("admin-api:key %d from 127.0.0.1", g.admin.ID)
		var got []string
		for _, e := range decode[[]keyjson.AuditEntry](t, r) {
			if e.Actor != actor || e.KeyID == nil || *e.KeyID != k.ID {
				t.Errorf("audit entry %+v, want actor %q and key %d", e, actor, k.ID)
			}
			got = append(got, e.Action)
		}
		if want := []string{"revoke", "rotate", "update", "update", "generate"}; !slices.Equal(got, want) {
			t.Errorf("audit actions %v, want %v", got, want)
		}
		r = g.do(t, "GET", fmt.Sprintf("/admin/api/keys/%d/audit?limit=1", k.ID), "")
		if entries := decode[[]keyjson.AuditEntry](t, r); len(entries) != 1 || entries[0].Action != "revoke" {
			t.Errorf("audit limit=1: %s", r.body)
		}
		// The server's log has an audit line for each change too.
		if n := strings.Count(g.logs.String(), `"msg":"audit: key changed over HTTP","audit":true,"actor":"`+actor+`"`); n < len(got) {
			t.Errorf("got %d audit log lines from %s, want at least %d", n, actor, len(got))
		}
	})
}

func TestAdminValidation(t *testing.T) {
	g := startAdmin(t, nil)
	k, _, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("/admin/api/keys/%d", k.ID)
	past := g.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		wantStatus               int
		wantIn                   string // the error names this
	}{
		{"NoHostname", "POST", "/admin/api/keys", `{"description": "x"}`, nil, 400, `\"hostname\" is required`},
		{"BadHostname", "POST", "/admin/api/keys", `{"hostname": "not a host!"}`, nil, 400, "invalid hostname"},
		{"BadScope", "POST", "/admin/api/keys", `{"hostname": "h1", "scopes": ["root"]}`, nil, 400, `invalid scope \"root\" in \"scopes\": want submit or admin`},
		{"CreateNoScopes", "POST", "/admin/api/keys", `{"hostname": "h1", "scopes": []}`, nil, 400, `\"scopes\" must name at least one scope`},
		{"NegativeRate", "POST", "/admin/api/keys", `{"hostname": "h1", "rate": -1}`, nil, 400, `\"rate\" must be a number of points per second, 0 or more, got -1`},
		{"NegativeBurst", "POST", "/admin/api/keys", `{"hostname": "h1", "burst": -1}`, nil, 400, `\"burst\" must be 0 or more, got -1`},
		{"FractionalBurst", "POST", "/admin/api/keys", `{"hostname": "h1", "burst": 1.5}`, nil, 400, `\"burst\" must be an integer`},
		{"RateAsString", "POST", "/admin/api/keys", `{"hostname": "h1", "rate": "fast"}`, nil, 400, `\"rate\" must be a number`},
		{"ScopesAsString", "POST", "/admin/api/keys", `{"hostname": "h1", "scopes": "admin"}`, nil, 400, `\"scopes\" must be a list of strings`},
		{"BadExpiresIn", "POST", "/admin/api/keys", `{"hostname": "h1", "expires_in": "soon"}`, nil, 400, `\"expires_in\" \"soon\" is not a duration`},
		{"NegativeExpiresIn", "POST", "/admin/api/keys", `{"hostname": "h1", "expires_in": "-1h"}`, nil, 400, `\"expires_in\" must be positive, got -1h0m0s`},
		{"BadExpiresAt", "POST", "/admin/api/keys", `{"hostname": "h1", "expires_at": "tomorrow"}`, nil, 400, `\"expires_at\" \"tomorrow\"`},
		{"PastExpiresAt", "POST", "/admin/api/keys", `{"hostname": "h1", "expires_at": "` + past + `"}`, nil, 400, `\"expires_at\" ` + past + ` is in the past`},
		{"TwoExpiries", "POST", "/admin/api/keys", `{"hostname": "h1", "expires_in": "1h", "expires_at": "2999-01-01T00:00:00Z"}`, nil, 400,
			`\"expires_in\" and \"expires_at\" cannot be used together`},
		{"UnknownField", "POST", "/admin/api/keys", `{"hostname": "h1", "hostnme": "h2"}`, nil, 400, `unknown field \"hostnme\"`},
		{"ControlCharacters", "POST", "/admin/api/keys", `{"hostname": "h1", "description": "a\u001b[31mb"}`, nil, 400, `\"description\" \"a\\x1b[31mb\" contains control characters`},
		{"CommaInMeasurement", "POST", "/admin/api/keys", `{"hostname": "h1", "measurements": ["a,b"]}`, nil, 400, `\"measurements\" \"a,b\" must name one measurement`},
		{"NoExpiryAndExpiresIn", "POST", "/admin/api/keys", `{"hostname": "h1", "no_expiry": true, "expires_in": "1h"}`, nil, 400,
			`\"expires_in\" and \"no_expiry\" cannot be used together`},
		{"NotJSON", "POST", "/admin/api/keys", `hostname=h1`, nil, 400, "invalid request"},
		{"Array", "POST", "/admin/api/keys", `[]`, nil, 400, "must be a JSON object"},
		{"TwoObjects", "POST", "/admin/api/keys", `{"hostname": "h1"} {}`, nil, 400, "more than one JSON value"},
		{"TextPlain", "POST", "/admin/api/keys", `{"hostname": "h1"}`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"NoContentType", "POST", "/admin/api/keys", `{"hostname": "h1"}`, []string{"Content-Type", ""}, 415, "application/json"},
		{"FormPatch", "PATCH", key, `description=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"NothingToChange", "PATCH", key, `{}`, nil, 400, `nothing to change: give \"expires_in\", \"expires_at\", \"no_expiry\", ` +
			`\"scopes\", \"measurements\", \"rate\", \"burst\", \"description\", \"name\", \"bucket\" or \"max_series\"`},
		{"NoScopes", "PATCH", key, `{"scopes": []}`, nil, 400, `\"scopes\" must name at least one scope`},
		{"Hostname", "PATCH", key, `{"hostname": "h2"}`, nil, 400, `\"hostname\" cannot be changed`},
		{"ExpiryAndNoExpiry", "PATCH", key, `{"no_expiry": true, "expires_in": "1h"}`, nil, 400, `\"expires_in\" and \"no_expiry\" cannot be used together`},
		{"EmptyMeasurement", "PATCH", key, `{"measurements": ["cpu", " "]}`, nil, 400, `\"measurements\" must name a measurement, got an empty one`},
		{"EmptyPatch", "PATCH", key, ``, nil, 400, "the body is empty"},
		{"BadGrace", "POST", key + "/rotate", `{"grace": "-1h"}`, nil, 400, `\"grace\" \"-1h\"`},
		{"BadStatus", "GET", "/admin/api/keys?status=gone", ``, nil, 400, `status \"gone\"`},
		{"BadLimit", "GET", key + "/audit?limit=x", ``, nil, 400, `limit \"x\"`},
		{"InternalBucket", "POST", "/admin/api/keys", `{"hostname": "h1", "bucket": "_internal"}`, nil, 400,
			`\"bucket\" \"_internal\" starts with \"_\"`},
		{"BucketPath", "PATCH", key, `{"bucket": "a/b/c"}`, nil, 400, `\"bucket\" \"a/b/c\" must be a bucket, or a database and retention policy`},
		{"NegativeMaxSeries", "PATCH", key, `{"max_series": -1}`, nil, 400, `\"max_series\" must be between 0`},
		{"BadDeadLetterKey", "GET", "/admin/api/dead-letters?key_id=x", ``, nil, 400, `key_id \"x\"`},
		{"BadDeadLetterLimit", "GET", "/admin/api/dead-letters?limit=-1", ``, nil, 400, `limit \"-1\"`},
		{"BadReplayKey", "POST", "/admin/api/dead-letters/replay", `{"key_id": "seven"}`, nil, 400, `\"key_id\" must be`},
		{"TooLarge", "POST", "/admin/api/keys", `{"hostname": "h1", "description": "` + strings.Repeat("x", 70000) + `"}`, nil, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.wantStatus || !strings.Contains(r.body, tt.wantIn) || !strings.HasPrefix(r.body, `{"error":`) {
				t.Errorf("got %d %s, want %d with an error containing %s", r.status, r.body, tt.wantStatus, tt.wantIn)
			}
		})
	}
	if keys, _ := g.keys.List(context.Background(), keystore.Filter{All: true}); len(keys) != 2 {
		t.Errorf("after invalid requests the store has %d keys, want the 2 it had", len(keys))
	}
}

func TestAdminNotFound(t *testing.T) {
	g := startAdmin(t, nil)
	const notFound = `{"error":"key not found"}`
	for _, req := range [][3]string{
		{"GET", "/admin/api/keys/999", ""},
		{"PATCH", "/admin/api/keys/999", `{"description": "x"}`},
		{"DELETE", "/admin/api/keys/999", ""},
		{"POST", "/admin/api/keys/999/revoke", ""},
		{"POST", "/admin/api/keys/999/rotate", `{"grace": "1h"}`},
		{"GET", "/admin/api/keys/999/audit", ""},
		{"POST", "/admin/api/keys/999/release", ""},
		{"GET", "/admin/api/keys/abc", ""},
		{"GET", "/admin/api/keys/-1", ""},
		{"DELETE", "/admin/api/keys/0", ""},
	} {
		t.Run(req[0]+" "+req[1], func(t *testing.T) {
			r := g.do(t, req[0], req[1], req[2])
			if r.status != 404 || strings.TrimSpace(r.body) != notFound {
				t.Errorf("got %d %s, want 404 %s", r.status, r.body, notFound)
			}
		})
	}
}

// TestAdminCrossOrigin checks that a browser request from another site
// cannot change keys, even if it carried an admin key, while the console's
// own requests and non-browser clients can.
func TestAdminCrossOrigin(t *testing.T) {
	g := startAdmin(t, nil)
	const create = `{"hostname": "10.0.0.1"}`
	tests := []struct {
		name       string
		method     string
		headers    []string
		wantStatus int
	}{
		{"OtherOrigin", "POST", []string{"Origin", "http://evil.example"}, 403},
		{"CrossSite", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403},
		{"SameSiteOtherOrigin", "POST", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"CrossSitePatch", "PATCH", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"CrossSiteDelete", "DELETE", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"SameOrigin", "POST", []string{"Sec-Fetch-Site", "same-origin", "Origin", "{url}"}, 201},
		{"OwnOriginHeaderOnly", "POST", []string{"Origin", "{url}"}, 201},
		{"NotABrowser", "POST", nil, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := g.keys.List(context.Background(), keystore.Filter{All: true})
			headers := slices.Clone(tt.headers)
			for i := range headers {
				headers[i] = strings.ReplaceAll(headers[i], "{url}", g.gateway.admin)
			}
			path, body := "/admin/api/keys", create
			switch tt.method {
			case "PATCH":
				path, body = fmt.Sprintf("/admin/api/keys/%d", g.admin.ID), `{"description": "owned"}`
			case "DELETE":
				path, body = fmt.Sprintf("/admin/api/keys/%d", g.admin.ID), ""
			}
			r := g.do(t, tt.method, path, body, headers...)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			after, _ := g.keys.List(context.Background(), keystore.Filter{All: true})
			if r.status == 403 {
				if !strings.Contains(r.body, "cross-origin request refused") {
					t.Errorf("got body %s, want it to say the cross-origin request was refused", r.body)
				}
				if fmt.Sprint(after) != fmt.Sprint(before) {
					t.Errorf("a refused request changed the keys: %v, then %v", before, after)
				}
			}
		})
	}
	// Reading needs the key, which another site's page cannot attach.
	if r := g.doAs(t, "", "GET", "/admin/api/keys", "", "Sec-Fetch-Site", "cross-site"); r.status != 401 {
		t.Errorf("cross-site read without a key: got %d, want 401", r.status)
	}
}

func TestAdminHeaders(t *testing.T) {
	g := startAdmin(t, nil)
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	tests := []struct {
		name, path, auth string
		wantStatus       int
		wantType         string
		wantCache        string
	}{
		{"Console", "/admin/", "", 200, "text/html; charset=utf-8", "no-cache"},
		{"Script", "/admin/console.js", "", 200, "text/javascript; charset=utf-8", "no-cache"},
		{"Style", "/admin/console.css", "", 200, "text/css; charset=utf-8", "no-cache"},
		{"APIList", "/admin/api/keys", "Bearer " + g.adminKey, 200, "application/json", "no-store"},
		{"APIUnauthorized", "/admin/api/keys", "", 401, "application/json", "no-store"},
		{"APINotFound", "/admin/api/keys/42", "Bearer " + g.adminKey, 404, "application/json", "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.doAs(t, tt.auth, "GET", tt.path, "")
			if r.status != tt.wantStatus {
				t.Fatalf("got %d, want %d", r.status, tt.wantStatus)
			}
			for name, want := range map[string]string{
				"Content-Security-Policy": csp,
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Content-Type":            tt.wantType,
				"Cache-Control":           tt.wantCache,
			} {
				if got := r.header.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
		})
	}
	t.Run("NoInlineCode", func(t *testing.T) {
		page := g.doAs(t, "", "GET", "/admin/", "").body
		for _, bad := range []string{"<script>", "style=", "<style", "javascript:", "http:", "https:", "//"} {
			if strings.Contains(page, bad) {
				t.Errorf("the console's page contains %q: inline code or an outside resource", bad)
			}
		}
		if handler := regexp.MustCompile(`\son[a-z]+=`).FindString(page); handler != "" {
			t.Errorf("the console's page has an inline event handler %q", handler)
		}
	})
	t.Run("KeyNeverStored", func(t *testing.T) {
		script := g.doAs(t, "", "GET", "/admin/console.js", "").body
		for _, bad := range []string{"localStorage.", "sessionStorage.", "document.cookie", "innerHTML", "outerHTML", "location.hash", "?key="} {
			if strings.Contains(script, bad) {
				t.Errorf("console.js uses %s", bad)
			}
		}
	})
}

// TestAdminRevokeReachesAuthentication revokes a key over HTTP and expects
// the running server to refuse it within a second: the admin API writes
// through the store's pool, and the authentication cache sees the commit.
func TestAdminRevokeReachesAuthentication(t *testing.T) {
	g := startAdmin(t, nil)
	r := g.do(t, "POST", "/admin/api/keys", `{"hostname": "127.0.0.1"}`)
	if r.status != 201 {
		t.Fatalf("create: got %d %s", r.status, r.body)
	}
	k := decode[keyjson.Generated](t, r)
	if r := g.submit(t, k.Value, onePoint); r.status != 200 {
		t.Fatalf("submit with the new key: got %d %s, want 200", r.status, r.body)
	}
	// Let the cache forget the creation, then have it hold the key.
	time.Sleep(100 * time.Millisecond)
	if r := g.submit(t, k.Value, onePoint); r.status != 200 {
		t.Fatalf("submit with the new key: got %d %s, want 200", r.status, r.body)
	}
	start := time.Now()
	if r := g.do(t, "DELETE", fmt.Sprintf("/admin/api/keys/%d", k.ID), ""); r.status != 200 {
		t.Fatalf("revoke: got %d %s", r.status, r.body)
	}
	for {
		r := g.submit(t, k.Value, onePoint)
		if r.status == 401 {
			t.Logf("the revocation reached authentication in %v", time.Since(start))
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("submit 1s after revoking: got %d %s, want 401", r.status, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNewNeedsEveryDependency checks that the handler cannot be built with
// a part missing, so no route (the admin API, say) is dropped silently.
func TestNewNeedsEveryDependency(t *testing.T) {
	_, err := server.New(server.DefaultConfig(), server.Deps{Log: slog.Default()})
	if err == nil || !strings.Contains(err.Error(), "Deps.Keys") {
		t.Errorf("New without Keys: got %v, want an error naming Deps.Keys", err)
	}
}

// TestAdminOnlyOnAdminListener checks that the ingest listener, the one
// clients reach, serves neither the admin API nor the console, even to an
// admin key, and that the admin listener serves no writes.
func TestAdminOnlyOnAdminListener(t *testing.T) {
	g := startAdmin(t, nil)
	for _, path := range []string{"/admin/", "/admin/api/keys"} {
		if r := g.gateway.do(t, "GET", path, "", "Authorization", "Bearer "+g.adminKey); r.status != 404 {
			t.Errorf("GET %s on the ingest listener: got %d, want 404", path, r.status)
		}
	}
	if r := g.do(t, "GET", "/admin/api/keys", ""); r.status != 200 {
		t.Errorf("GET /admin/api/keys on the admin listener: got %d %s, want 200", r.status, r.body)
	}
	if r := request(t, "POST", g.gateway.admin+"/api/submit", onePoint, "X-API-Key", g.adminKey); r.status != 404 && r.status != 405 {
		t.Errorf("POST /api/submit on the admin listener: got %d, want 404", r.status)
	}
}

// TestAdminKeyMinting is the attack of a stolen admin key used once from
// its host: it must not yield a key that works from anywhere, or forever.
// Creating, widening and rotating admin keys over HTTP are refused beyond
// the limits with a 400 that names the problem, and leave the store as it
// was; within them they work; and the key store itself, which keyctl on
// the host uses, keeps full power.
func TestAdminKeyMinting(t *testing.T) {
	g := startAdmin(t, nil) // the admin key: 127.0.0.1, no expiry, as keyctl made it
	ctx := context.Background()
	wide, _, err := g.keys.Generate(ctx, keystore.NewKey{Hostname: "0.0.0.0/0", Description: "a submit key for every host"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := g.keys.List(ctx, keystore.Filter{All: true})
	refused := []struct {
		name, method, path, body, wantIn string
	}{
		{"AnywhereForever", "POST", "/admin/api/keys", `{"hostname": "0.0.0.0/0", "scopes": ["admin"]}`, `wider than a /24`},
		{"AnywhereV6", "POST", "/admin/api/keys", `{"hostname": "::/0", "scopes": ["admin"], "expires_in": "24h"}`, `\"hostname\" ::/0 is wider than a /64`},
		{"Anywhere", "POST", "/admin/api/keys", `{"hostname": "0.0.0.0/0", "scopes": ["submit", "admin"], "expires_in": "24h"}`,
			`\"hostname\" 0.0.0.0/0 is wider than a /24`},
		{"Forever", "POST", "/admin/api/keys", `{"hostname": "127.0.0.1", "scopes": ["admin"]}`,
			`an admin key must expire within 2160h0m0s: give \"expires_in\" or \"expires_at\"`},
		{"NoExpiry", "POST", "/admin/api/keys", `{"hostname": "127.0.0.1", "scopes": ["admin"], "no_expiry": true}`, `must expire within 2160h0m0s`},
		{"TooLong", "POST", "/admin/api/keys", `{"hostname": "127.0.0.1", "scopes": ["admin"], "expires_in": "2161h"}`, `must expire within 2160h0m0s`},
		{"GrantToWideKey", "PATCH", fmt.Sprintf("/admin/api/keys/%d", wide.ID), `{"scopes": ["submit", "admin"], "expires_in": "24h"}`,
			`\"hostname\" 0.0.0.0/0 is wider than a /24`},
		{"ExtendOwnKeyForever", "PATCH", fmt.Sprintf("/admin/api/keys/%d", g.admin.ID), `{"expires_in": "8760h"}`, ""},
		{"RotateOwnKey", "POST", fmt.Sprintf("/admin/api/keys/%d/rotate", g.admin.ID), `{"grace": "1h"}`,
			fmt.Sprintf("key %d cannot be rotated over HTTP (set an expiry first, or rotate it with keyctl)", g.admin.ID)},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do(t, tt.method, tt.path, tt.body)
			if tt.name == "ExtendOwnKeyForever" {
				// The key had no expiry: a year is shorter, and allowed.
				if r.status != 200 {
					t.Fatalf("got %d %s, want 200", r.status, r.body)
				}
				r = g.do(t, "PATCH", tt.path, `{"no_expiry": true}`)
				tt.wantIn = `must expire within 2160h0m0s`
			}
			if r.status != 400 || !strings.Contains(r.body, tt.wantIn) || !strings.Contains(r.body, "beyond the limits of an admin key made over HTTP") {
				t.Errorf("got %d %s, want 400 naming %s", r.status, r.body, tt.wantIn)
			}
		})
	}
	after, _ := g.keys.List(ctx, keystore.Filter{All: true})
	if len(after) != len(before) {
		t.Fatalf("the store has %d keys after the refused requests, want the %d it had", len(after), len(before))
	}
	for _, k := range after {
		if k.ID == wide.ID && k.HasScope(keystore.ScopeAdmin) {
			t.Errorf("the key for 0.0.0.0/0 gained the admin scope: %+v", k)
		}
		if k.ID == g.admin.ID && !k.ExpiresAt.Equal(g.clock.Now().Add(8760*time.Hour)) {
			t.Errorf("the admin key expires at %v, want in a year as the allowed change set it", k.ExpiresAt)
		}
	}

	r := g.do(t, "POST", "/admin/api/keys", `{"hostname": "10.0.0.0/24", "scopes": ["admin"], "expires_in": "2160h"}`)
	if r.status != 201 {
		t.Fatalf("an admin key for a /24 for 90 days: got %d %s, want 201", r.status, r.body)
	}
	minted := decode[keyjson.Generated](t, r)
	r = g.do(t, "PATCH", fmt.Sprintf("/admin/api/keys/%d", minted.ID), `{"expires_in": "2161h"}`)
	if r.status != 400 || !strings.Contains(r.body, "must expire within 2160h0m0s") {
		t.Errorf("extending the new admin key past 90 days: got %d %s, want 400", r.status, r.body)
	}
	r = g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/rotate", minted.ID), "")
	if r.status != 201 {
		t.Errorf("rotating an admin key within the limits: got %d %s, want 201", r.status, r.body)
	}

	// The key store, which keyctl uses on the host, is not bound by them.
	if k, _, err := g.keys.Generate(ctx, keystore.NewKey{Hostname: "0.0.0.0/0", Scopes: []string{"admin"}}); err != nil || !k.HasScope(keystore.ScopeAdmin) {
		t.Errorf("keyctl's store could not make an admin key for anywhere: %+v, %v", k, err)
	}
}

// TestAdminKeyMaxTTL checks that AdminKeyMaxTTL sets the limit.
func TestAdminKeyMaxTTL(t *testing.T) {
	g := startAdmin(t, func(cfg *server.Config) { cfg.AdminKeyMaxTTL = time.Hour })
	if r := g.do(t, "POST", "/admin/api/keys", `{"hostname": "127.0.0.1", "scopes": ["admin"], "expires_in": "61m"}`); r.status != 400 ||
		!strings.Contains(r.body, "must expire within 1h0m0s") {
		t.Errorf("61 minutes with a limit of 1h: got %d %s, want 400", r.status, r.body)
	}
	if r := g.do(t, "POST", "/admin/api/keys", `{"hostname": "127.0.0.1", "scopes": ["admin"], "expires_in": "1h"}`); r.status != 201 {
		t.Errorf("1h with a limit of 1h: got %d %s, want 201", r.status, r.body)
	}
}
