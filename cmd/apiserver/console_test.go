package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// consoleCSP is the policy the console must be served with.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// browserLog is what the page asked of the network and said on its console.
type browserLog struct {
	mu       sync.Mutex
	requests []string
	problems []string
	document network.Headers
}

func (l *browserLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.requests = append(l.requests, ev.Request.URL)
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument {
			l.document = ev.Response.Headers
		}
	case *runtime.EventExceptionThrown:
		l.problems = append(l.problems, "exception: "+ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			l.problems = append(l.problems, fmt.Sprintf("console.%s %v", ev.Type, ev.Args))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			l.problems = append(l.problems, fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

// newBrowser starts headless Chromium, which scripts/test.sh installs from
// Debian's packages. Without it the test fails in CI and is skipped
// elsewhere.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Starting the browser binds it to this context: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// TestConsoleInBrowser runs the whole apiserver and drives the web console
// in headless Chromium: sign in with an admin key, create a key, use it,
// revoke it in the console and see it refused. With METRICGATE_SCREENSHOT
// set it also saves a screenshot of the console, to docs/console.png when
// the value is 1, or to the path it names.
func TestConsoleInBrowser(t *testing.T) {
	browser := newBrowser(t)
	db := testenv.InfluxDB(t)
	ctx := context.Background()

	dbPath := filepath.Join(t.TempDir(), "api_keys.db")
	keys, err := keystore.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	keys.Actor = "keyctl:test"
	admin, adminKey, err := keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}, Description: "console admin"})
	if err != nil {
		t.Fatal(err)
	}

	r := startRun(t, "http", "--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name,
		"--spool-dir", t.TempDir(), "--batch-wait", "10ms", "--usage-flush", "100ms")
	base, adminURL := r.base, r.admin
	waitReady(t, base)
	// The console is served on the admin listener only.
	if resp, err := http.Get(base + "/admin/"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET /admin/ on the ingest listener: %v %v, want 404", resp, err)
	}

	resp, err := http.Get(adminURL + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || got != consoleCSP {
		t.Fatalf("GET /admin/: %d with Content-Security-Policy %q, want 200 with %q", resp.StatusCode, got, consoleCSP)
	}

	bl := &browserLog{}
	if err := chromedp.Listen(browser, bl.listen); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// listed waits until the console has listed the keys again after a change.
	listed := chromedp.WaitVisible(chromedp.CSS(`#keys-table[aria-busy="false"]`))

	step("sign in",
		chromedp.Navigate(adminURL+"/admin/"),
		chromedp.WaitVisible(chromedp.ID("signin-key")),
		chromedp.SendKeys(chromedp.ID("signin-key"), adminKey),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"]`, admin.ID))),
	)
	step("create a key",
		chromedp.Click(chromedp.ID("new-key")),
		chromedp.WaitVisible(chromedp.ID("create-hostname")),
		chromedp.SendKeys(chromedp.ID("create-hostname"), "127.0.0.1"),
		chromedp.SendKeys(chromedp.ID("create-description"), "made in the browser"),
		chromedp.SendKeys(chromedp.ID("create-bucket"), db.Name),
		chromedp.SetValue(chromedp.ID("create-max-series"), "500"),
		chromedp.Click(chromedp.ID("create-submit")),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
	)
	newKey, err := chromedp.Run(tctx, chromedp.Value(chromedp.ID("secret-value")))
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.Find(ctx, newKey)
	if err != nil {
		t.Fatalf("the console showed %q, which is not a key: %v", newKey, err)
	}
	if k.Hostname != "127.0.0.1" || k.Description != "made in the browser" || !k.HasScope(keystore.ScopeSubmit) ||
		k.Bucket != db.Name || k.MaxSeries != 500 {
		t.Errorf("the key made in the console is %+v", k)
	}
	row := chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"]`, k.ID))
	step("see it listed",
		chromedp.Click(chromedp.ID("secret-done")),
		chromedp.WaitNotVisible(chromedp.ID("secret-dialog")),
		listed,
		chromedp.WaitVisible(row),
	)
	if v, err := chromedp.Run(tctx, chromedp.Value(chromedp.ID("secret-value"))); err != nil || v != "" {
		t.Errorf("after the dialog closed the page still holds the key (%q, %v)", v, err)
	}
	if text, err := chromedp.Run(tctx, chromedp.Text(row)); err != nil || !strings.Contains(text, "made in the browser") || !strings.Contains(text, k.Prefix) ||
		!strings.Contains(text, "bucket "+db.Name) || !strings.Contains(text, "500 series/h") {
		t.Errorf("the new key's row reads %q (%v)", text, err)
	}

	if status, body := submit(t, base, newKey, `{"field": "browser_made", "value": 7}`); status != 200 {
		t.Fatalf("submit with the console's key: got %d %s, want 200", status, body)
	}
	if n := db.WaitCount(t, "custom_metrics", "browser_made", 1, 5*time.Second); n != 1 {
		t.Fatalf("got %d points in InfluxDB, want 1", n)
	}

	step("edit its expiry, scopes and rate",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"] button.edit`, k.ID))),
		chromedp.WaitVisible(chromedp.ID("edit-dialog")),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("edit-expiry");
			s.value = "days"; s.dispatchEvent(new Event("change")); })()`),
		chromedp.SendKeys(chromedp.ID("edit-days"), "30"),
		chromedp.Click(chromedp.ID("edit-scope-admin")),
		chromedp.SetValue(chromedp.ID("edit-rate"), "100"),
		chromedp.Click(chromedp.ID("edit-submit")),
		chromedp.WaitNotVisible(chromedp.ID("edit-dialog")),
		listed,
	)
	edited, err := keys.Get(ctx, k.ID)
	if err != nil || edited.Rate != 100 || !edited.HasScope(keystore.ScopeAdmin) || !edited.HasScope(keystore.ScopeSubmit) ||
		time.Until(edited.ExpiresAt) < 719*time.Hour || time.Until(edited.ExpiresAt) > 721*time.Hour {
		t.Errorf("after editing in the console the key is %+v (%v), want rate 100, scopes submit and admin, expiry in 30 days", edited, err)
	}

	step("rotate it",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"] button.rotate`, k.ID))),
		chromedp.WaitVisible(chromedp.ID("rotate-dialog")),
		chromedp.SetValue(chromedp.ID("rotate-grace"), "1h"),
		chromedp.Click(chromedp.ID("rotate-submit")),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
	)
	rotatedKey, err := chromedp.Run(tctx, chromedp.Value(chromedp.ID("secret-value")))
	if err != nil {
		t.Fatal(err)
	}
	step("close the new key", chromedp.Click(chromedp.ID("secret-done")), chromedp.WaitNotVisible(chromedp.ID("secret-dialog")), listed)
	rotated, err := keys.Find(ctx, rotatedKey)
	old, _ := keys.Get(ctx, k.ID)
	if err != nil || old.ReplacedBy != rotated.ID || rotated.Rate != 100 || time.Until(old.ExpiresAt) > time.Hour {
		t.Errorf("after rotating in the console: old key %+v, new key %+v (%v)", old, rotated, err)
	}
	step("see the new key listed", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"]`, rotated.ID))))
	releaseInConsole(t, tctx, keys, rotated.ID, fmt.Sprintf("admin-api:key %d from 127.0.0.1", admin.ID))

	step("revoke it, confirming",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"] button.revoke`, k.ID))),
		chromedp.WaitVisible(chromedp.ID("confirm-dialog")),
	)
	if stored, _ := keys.Get(ctx, k.ID); stored.Status(time.Now()) != keystore.StatusActive {
		t.Fatal("the key was revoked before the confirmation")
	}
	step("confirm",
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotPresent(row),
		listed,
	)
	start := time.Now()
	for {
		status, body := submit(t, base, newKey, `{"field": "browser_made", "value": 8}`)
		if status == 401 {
			t.Logf("the revocation reached the gateway %v after the console showed it", time.Since(start))
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("submit 1s after revoking in the console: got %d %s, want 401", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	entries, err := keys.Audit(ctx, k.ID, 0)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		if want := fmt.Sprintf("admin-api:key %d from 127.0.0.1", admin.ID); e.Actor != want {
			t.Errorf("audit entry %+v, want the actor %q", e, want)
		}
	}
	if err != nil || strings.Join(actions, " ") != "revoke rotate update generate" {
		t.Errorf("audit of the key: %v (%v), want revoke, rotate, update, generate", actions, err)
	}

	if path := os.Getenv("METRICGATE_SCREENSHOT"); path != "" {
		screenshot(t, tctx, base, keys, path)
	}

	bl.mu.Lock()
	defer bl.mu.Unlock()
	if len(bl.requests) == 0 {
		t.Error("the browser made no request that the test saw")
	}
	for _, u := range bl.requests {
		if !strings.HasPrefix(u, adminURL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page loaded %s, outside the gateway", u)
		}
	}
	if got := headerValue(bl.document, "Content-Security-Policy"); got != consoleCSP {
		t.Errorf("the browser got the console with Content-Security-Policy %q, want %q", got, consoleCSP)
	}
	for _, p := range bl.problems {
		t.Errorf("the page reported: %s", p)
	}
}

// releaseInConsole quarantines key id as a gateway would, lists the keys
// again in the console, finds the key marked, releases it there, and
// checks the store and the audit log.
func releaseInConsole(t *testing.T, ctx context.Context, keys *keystore.Store, id int64, actor string) {
	t.Helper()
	if _, _, err := keys.Quarantine(context.Background(), id, "InfluxDB refused 100 of its points within 1m0s"); err != nil {
		t.Fatal(err)
	}
	badge := chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"] .status-quarantined`, id))
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#filter-form button[type="submit"]`)),
		chromedp.WaitVisible(badge),
	); err != nil {
		t.Fatalf("seeing the key quarantined: %v", err)
	}
	if title, err := chromedp.Run(ctx, chromedp.AttributeValue(badge, "title")); err != nil || !strings.Contains(title.Value, "refused 100") {
		t.Errorf("the quarantine badge's title is %q (%v), want the reason", title.Value, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keys-body tr[data-key-id="%d"] button.release`, id))),
		chromedp.WaitNotPresent(badge),
		chromedp.WaitVisible(chromedp.CSS(`#keys-table[aria-busy="false"]`)),
	); err != nil {
		t.Fatalf("releasing the key: %v", err)
	}
	k, err := keys.Get(context.Background(), id)
	entries, _ := keys.Audit(context.Background(), id, 1)
	if err != nil || k.Quarantined() || len(entries) != 1 || entries[0].Action != keystore.ActionRelease || entries[0].Actor != actor {
		t.Errorf("after releasing in the console: key %+v (%v), last audit entry %+v; want it released by %s", k, err, entries, actor)
	}
}

// screenshot adds a few keys with some use, lists every key in the console,
// and saves a picture of it.
func screenshot(t *testing.T, ctx context.Context, base string, keys *keystore.Store, path string) {
	t.Helper()
	if path == "1" || path == "true" {
		path = filepath.Join("..", "..", "docs", "console.png")
	}
	bg := context.Background()
	seed := []struct {
		nk     keystore.NewKey
		points []int // batch sizes to submit
	}{
		{keystore.NewKey{Hostname: "127.0.0.0/8", Description: "telegraf on db-1", Measurements: []string{"cpu", "mem", "disk"}}, []int{2000, 2000, 1200}},
		{keystore.NewKey{Hostname: "127.0.0.1", Description: "nightly backup job", Rate: 50, Burst: 500}, []int{120, 300}},
		{keystore.NewKey{Hostname: "127.0.0.1", Description: "os_updates cron", ExpiresAt: time.Now().Add(90 * 24 * time.Hour)}, []int{40}},
		{keystore.NewKey{Hostname: "10.0.0.0/24", Description: "batch workers", Bucket: "batch", MaxSeries: 2000}, nil},
		{keystore.NewKey{Hostname: "web-1.example.com", Description: "web frontend", ExpiresAt: time.Now().Add(500 * time.Millisecond)}, nil},
	}
	var last keystore.Key
	for _, s := range seed {
		k, plain, err := keys.Generate(bg, s.nk)
		if err != nil {
			t.Fatal(err)
		}

		if len(s.points) > 0 {
			last = k
		}
		for _, n := range s.points {
			m := "custom_metrics"
			if len(s.nk.Measurements) > 0 {
				m = s.nk.Measurements[0]
			}
			var b strings.Builder
			b.WriteString("[")
			for i := range n {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"measurement": %q, "field": "v", "value": %d, "timestamp": %d}`, m, i, 1700000000000000000+int64(i))
			}
			b.WriteString("]")
			if status, body := submit(t, base, plain, b.String()); status != 200 {
				t.Fatalf("seeding usage: got %d %s", status, body)
			}
		}
		if s.nk.Description == "os_updates cron" {
			if _, _, err := keys.Quarantine(bg, k.ID, "InfluxDB refused 100 of its points within 1m0s; the last: partial write: field type conflict"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The screenshot shows the usage the gateway flushed and the web
	// frontend's key expired.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if k, err := keys.Get(bg, last.ID); err == nil && k.Requests > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the seeded usage was not flushed within 10 s")
		}
	}
	time.Sleep(time.Until(seed[len(seed)-1].nk.ExpiresAt))
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("filter-status"), "all"),
		chromedp.Click(chromedp.CSS(`#filter-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#keys-body tr[data-status="expired"]`)),
		chromedp.Sleep(200*time.Millisecond),
	); err != nil {
		t.Fatalf("listing every key: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote a screenshot of the console to %s", path)
}

func submit(t *testing.T, base, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/submit", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// headerValue reads a header from the browser's map, whose names may be in
// any case.
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}
