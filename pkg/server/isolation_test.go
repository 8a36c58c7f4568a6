package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/forward"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
)

// TestWideLine sends one point of 130,000 fields in a 1 MiB body: it is
// refused with 400 naming the line and the budget, and nothing is stored.
// A point within the budget costs its key a token per field value.
func TestWideLine(t *testing.T) {
	g := startGateway(t, func(c *server.Config) { c.MaxBody = 2 << 20 })
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Rate: 1, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("wide ")
	for i := range 130000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "f%d=1", i)
	}
	token := []string{"Authorization", "Token " + key}
	r := g.post(t, "/api/v2/write?bucket=b", b.String(), token...)
	if r.status != 400 || !strings.Contains(r.body, "line 1: a point may have at most 256 fields") {
		t.Fatalf("a 130,000-field line of %d bytes: got %d %s, want 400 naming the line and the budget", b.Len(), r.status, r.body)
	}
	if r := g.post(t, "/api/v2/write?bucket=b", "narrow a=1,b=2,c=3 1", token...); r.status != 204 || r.header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("a 3-field point with a burst of 5: got %d %s remaining=%q, want 204 and 2 left", r.status, r.body, r.header.Get("RateLimit-Remaining"))
	}
	if r := g.post(t, "/api/v2/write?bucket=b", "narrow a=1,b=2,c=3 2", token...); r.status != 429 || !strings.Contains(r.body, "2 more field values") {
		t.Errorf("3 more field values with 2 left: got %d %s, want 429", r.status, r.body)
	}
	if n := g.count(t, "narrow", "a"); n != 1 {
		t.Errorf("got %d narrow points, want 1", n)
	}
	if s := g.query(t, `SHOW MEASUREMENTS`); strings.Contains(fmt.Sprint(s), "wide") {
		t.Errorf("the refused wide line reached InfluxDB: %v", s)
	}
}

// TestTimeWindow sends points from outside the accepted window, in JSON
// and line protocol: each is refused with 400 naming its index or line,
// and nothing of the request is stored. The README's 2023 example is in
// the window when --max-past is off, as it is by default.
func TestTimeWindow(t *testing.T) {
	g := startGateway(t, func(c *server.Config) { c.Limits.MaxPast = 30 * 24 * time.Hour })
	_, key := g.key(t, "127.0.0.1")
	week := fixedNow.Add(7 * 24 * time.Hour).UnixNano()
	year := fixedNow.Add(-365 * 24 * time.Hour).UnixNano()
	now := fixedNow.UnixNano()
	tests := []struct {
		name, path, body, mention string
	}{
		{"JSONNextWeek", "/api/submit", fmt.Sprintf(`[{"field":"w","value":1,"timestamp":%d},{"field":"w","value":1,"timestamp":%d}]`, now, week),
			"point 1: timestamp 2023-11-21T22:13:20.123456789Z is 168h0m0s ahead of the gateway's clock"},
		{"JSONLastYear", "/api/submit", fmt.Sprintf(`{"field":"w","value":1,"timestamp":%d}`, year), "point 0: timestamp 2022-11-14T22:13:20.123456789Z is 8760h0m0s behind"},
		{"JSONOutOfRange", "/api/submit", `{"field":"w","value":1,"timestamp":-9223372036854775808}`, "outside the range InfluxDB stores"},
		{"LineNextWeek", "/api/v2/write?bucket=b", fmt.Sprintf("w v=1 %d\nw v=1 %d", now, week), "line 2: timestamp"},
		{"LineSecondsLastYear", "/write?db=d&precision=s", fmt.Sprintf("w v=1 %d", year/1e9), "line 1: timestamp 2022-11-14T22:13:20Z is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.post(t, tt.path, tt.body, "Content-Type", "application/json", "X-API-Key", key, "Authorization", "Token "+key)
			if r.status != 400 || !strings.Contains(r.body, tt.mention) {
				t.Errorf("got %d %s, want 400 mentioning %q", r.status, r.body, tt.mention)
			}
		})
	}
	if n := g.count(t, "custom_metrics", "w"); n != 0 {
		t.Errorf("got %d points stored from refused requests, want 0", n)
	}
	open := startGateway(t, nil)
	_, key2 := open.key(t, "127.0.0.1")
	if r := open.submit(t, key2, `{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`); r.status != 200 {
		t.Errorf("the README's example with --max-past off: got %d %s, want 200", r.status, r.body)
	}
}

// TestSeriesBudget gives keys a budget of 5 series an hour: a key that
// tries a sixth new series gets 429 with the reason, while its own 5
// series and another key's keep flowing, and the next hour it may write
// new ones.
func TestSeriesBudget(t *testing.T) {
	c := testenv.NewClock(fixedNow)
	g := startGateway(t, func(cfg *server.Config) {
		cfg.Now = c.Now
		cfg.MaxSeriesPerKey = 5
	})
	_, greedy := g.key(t, "127.0.0.1")
	_, other := g.key(t, "127.0.0.1")
	series := func(from, to int) string {
		var pts []string
		for i := from; i < to; i++ {
			pts = append(pts, fmt.Sprintf(`{"field":"v","value":%d,"tags":{"id":"%d"},"timestamp":%d}`, i, i, fixedNow.UnixNano()+int64(i)))
		}
		return "[" + strings.Join(pts, ",") + "]"
	}
	if r := g.submit(t, greedy, series(0, 5)); r.status != 200 {
		t.Fatalf("5 series: got %d %s, want 200", r.status, r.body)
	}
	r := g.submit(t, greedy, series(3, 7))
	if r.status != 429 || !strings.Contains(r.body, "has written 5 distinct series this hour, its limit of 5, and this request has 2 new ones") ||
		r.header.Get("Retry-After") != "2800" {
		t.Fatalf("2 more series: got %d %s Retry-After=%q, want 429 with the reason and the wait until the hour ends",
			r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := g.post(t, "/api/v2/write?bucket=b", fmt.Sprintf("custom_metrics,id=0 v=10i %d\ncustom_metrics,id=4 v=14i %d", fixedNow.UnixNano()+100, fixedNow.UnixNano()+100), "Authorization", "Token "+greedy); r.status != 204 {
		t.Errorf("the key's own series again: got %d %s, want 204", r.status, r.body)
	}
	if r := g.submit(t, other, series(10, 15)); r.status != 200 {
		t.Errorf("another key's 5 series: got %d %s, want 200", r.status, r.body)
	}
	c.Advance(time.Hour)
	if r := g.submit(t, greedy, series(5, 7)); r.status != 200 {
		t.Errorf("new series the next hour: got %d %s, want 200", r.status, r.body)
	}
	if n := g.count(t, "custom_metrics", "v"); n != 5+2+5+2 {
		t.Errorf("got %d points stored, want 14 (nothing of the refused request)", n)
	}
}

// TestNoTokensNoBody spends a key's tokens, then sends a request whose
// body never comes: the answer is 429 all the same, so the gateway did not
// wait to read it.
func TestNoTokensNoBody(t *testing.T) {
	c := testenv.NewClock(fixedNow)
	g := startGateway(t, func(cfg *server.Config) { cfg.Now = c.Now })
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r := g.submit(t, key, `[{"field":"x","value":1},{"field":"y","value":1}]`); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", g.url+"/api/submit", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 19
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "no field values left") {
		t.Errorf("with no tokens and the body unsent: got %d %s Retry-After=%q, want 429 at once", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// TestParseMemoryCounted holds the body budget with a half-sent body, then
// sends a small body (not counted as a body) of 4000 short lines, whose
// points take far more memory than the body: their parse must wait for
// room and gets 503 when none comes, where before it parsed outside the
// budget.
func TestParseMemoryCounted(t *testing.T) {
	g := startGateway(t, func(c *server.Config) {
		c.BodyMemory = 256 << 10
		c.BodyMemoryWait = 100 * time.Millisecond
	})
	_, key := g.key(t, "127.0.0.1")
	var lines strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&lines, "m v=%di\n", i%10)
	}
	token := []string{"Authorization", "Token " + key}
	if r := g.post(t, "/api/v2/write?bucket=b", lines.String(), token...); r.status != 204 {
		t.Fatalf("with the budget free: got %d %s, want 204", r.status, r.body)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	req, _ := http.NewRequest("POST", g.url+"/api/submit", pr)
	req.ContentLength = 250 << 10
	req.Header.Set("X-API-Key", key)
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte("[")) // the request is read, its room taken
	var r response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if r = g.post(t, "/api/v2/write?bucket=b", lines.String(), token...); r.status == 503 {
			break
		}
	}
	if r.status != 503 || !strings.Contains(r.body, "as many request bodies as its memory allows") {
		t.Errorf("a %d-byte body of 4000 points with the budget held: got %d %s, want 503", lines.Len(), r.status, r.body)
	}
}

// TestPoisoning is the attack on a shared bucket: one key writes a string
// for the float field every host writes, timestamped next week, and then
// now; another key goes on writing its floats. The attacker is refused at
// the door, the other key's acknowledged points all reach InfluxDB, and
// none of them is dead-lettered.
func TestPoisoning(t *testing.T) {
	spoolDir := ""
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) { spoolDir = cfg.Spool.Dir })
	honestKey, honest := g.key(t, "127.0.0.1")
	_, attacker := g.key(t, "127.0.0.1")
	week := fixedNow.Add(7 * 24 * time.Hour).Truncate(7 * 24 * time.Hour).UnixNano()
	acked := writeUsage(t, g, honest)
	attacks := []struct{ name, body, mention string }{
		{"NextWeek", fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":"x","timestamp":%d}`, week), "ahead of the gateway's clock"},
		{"Now", `{"measurement":"cpu","field":"usage","value":"x"}`, "holds it as float"},
	}
	// The field exists before the attack.
	if r := g.submit(t, honest, fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":0.25,"timestamp":%d}`, fixedNow.UnixNano()-1)); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	for _, a := range attacks {
		if r := g.submit(t, attacker, a.body); r.status != 400 || !strings.Contains(r.body, a.mention) {
			t.Errorf("%s: got %d %s, want 400 mentioning %q", a.name, r.status, r.body, a.mention)
		}
	}
	n := <-acked
	if got := g.count(t, "cpu", "usage"); got != int64(n)+1 {
		t.Errorf("InfluxDB holds %d points of cpu.usage, want the %d acknowledged", got, n+1)
	}
	for _, d := range deadLetters(t, spoolDir) {
		if d.KeyID == honestKey.ID {
			t.Errorf("the honest key's point was dead-lettered: %+v", d)
		}
	}
}

// TestPoisoningWithoutGuard is the same attack with the guard off and no
// time window, as before this change: InfluxDB refuses the honest key's
// acknowledged points once the attacker's string is in, and they are
// dead-lettered. It shows the test above would catch the attack.
func TestPoisoningWithoutGuard(t *testing.T) {
	spoolDir := ""
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		spoolDir = cfg.Spool.Dir
		cfg.NoSchemaGuard = true
		cfg.Server.Limits.MaxFuture = 0
	})
	honestKey, honest := g.key(t, "127.0.0.1")
	_, attacker := g.key(t, "127.0.0.1")
	if r := g.submit(t, attacker, `{"measurement":"cpu","field":"usage","value":"x"}`); r.status != 200 {
		t.Fatalf("the attack without the guard: got %d %s, want 200", r.status, r.body)
	}
	g.delivered(t)
	if r := g.submit(t, honest, fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":0.5,"timestamp":%d}`, fixedNow.UnixNano()+1)); r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	g.delivered(t)
	letters := deadLetters(t, spoolDir)
	if len(letters) != 1 || letters[0].KeyID != honestKey.ID {
		t.Errorf("dead letters %+v, want the honest key's acknowledged point", letters)
	}
}

// writeUsage submits, in the background, 200 points of cpu.usage as
// floats with key, one a request from fixedNow on, and then one at each
// of extra, and sends on the channel it returns how many were
// acknowledged.
func writeUsage(t *testing.T, g *gateway, key string, extra ...int64) <-chan int {
	acked := make(chan int, 1)
	go func() {
		n := 0
		stamps := make([]int64, 0, 200+len(extra))
		for i := range 200 {
			stamps = append(stamps, fixedNow.UnixNano()+int64(i))
		}
		for _, ts := range append(stamps, extra...) {
			body := fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":0.5,"timestamp":%d}`, ts)
			if r := g.submit(t, key, body); r.status == 200 {
				n++
			}
		}
		acked <- n
	}()
	return acked
}

// deadLetters reads the gateway's dead-letter file, none if it has none.
func deadLetters(t *testing.T, spoolDir string) []forward.DeadLetter {
	t.Helper()
	f, err := os.Open(filepath.Join(spoolDir, "dead-letter.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []forward.DeadLetter
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var d forward.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
