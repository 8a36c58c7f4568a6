package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestMain lets the test binary run as the apiserver itself, so the
// durability tests can kill a real server process.
func TestMain(m *testing.M) {
	if os.Getenv("APISERVER_TEST_EXEC") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is an apiserver running as a child process.
type process struct {
	cmd   *exec.Cmd
	base  string // the ingest listener's URL
	admin string // the admin listener's URL
	log   string
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "apiserver.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(os.Args[0], append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "APISERVER_TEST_EXEC=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	t.Cleanup(func() { p.kill() })
	read := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	p.base = "http://" + boundAddr(t, "listening", read, nil)
	p.admin = "http://" + boundAddr(t, "admin listening", read, nil)
	return p
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		b, _ := os.ReadFile(p.log)
		t.Fatalf("apiserver exited with %v:\n%s", err, b)
	}
}

// spoolPoints reads the spool depth from the admin listener's /readyz.
func (p *process) spoolPoints(t *testing.T) int64 {
	t.Helper()
	resp, err := http.Get(p.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Spool struct{ Points int64 }
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	return ready.Spool.Points
}

// waitDrained waits until the spool is empty.
func (p *process) waitDrained(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.spoolPoints(t) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d points after %v", p.spoolPoints(t), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loader sends one point per request from several workers, each point with
// a unique timestamp, and remembers which ones got a 2xx.
type loader struct {
	key string
	// pause is how long each worker waits after an answer: 0 loads the
	// servers as hard as the workers can.
	pause   time.Duration
	next    atomic.Int64
	mu      sync.Mutex
	answers *sync.Cond // broadcast on every answer, under mu
	acked   map[int64]bool
	codes   map[int]int
}

func newLoader(key string) *loader {
	l := &loader{key: key, acked: map[int64]bool{}, codes: map[int]int{}}
	l.answers = sync.NewCond(&l.mu)
	l.next.Store(1_600_000_000_000_000_000)
	return l
}

// waitAcked waits until n points in all have been acknowledged, and
// returns false if that takes longer than timeout.
func (l *loader) waitAcked(n int, timeout time.Duration) bool {
	return l.waitFor(func() bool { return len(l.acked) >= n }, timeout)
}

// waitFor waits until cond, called under l.mu, holds after an answer, and
// returns false if that takes longer than timeout.
func (l *loader) waitFor(cond func() bool, timeout time.Duration) bool {
	deadline := time.AfterFunc(timeout, func() { l.mu.Lock(); l.answers.Broadcast(); l.mu.Unlock() })
	defer deadline.Stop()
	start := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !cond() {
		if time.Since(start) >= timeout {
			return false
		}
		l.answers.Wait()
	}
	return true
}

// acknowledged returns how many points have been acknowledged so far.
func (l *loader) acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// run loads base() until ctx ends; base is read per request so the target
// may change (a restarted server).
func (l *loader) run(ctx context.Context, workers int, base func() string) {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				ts := l.next.Add(1)
				body := fmt.Sprintf(`{"measurement": "durability", "field": "n", "value": %d, "timestamp": %d}`, ts, ts)
				req, _ := http.NewRequest("POST", base()+"/api/submit", strings.NewReader(body))
				req.Header.Set("X-API-Key", l.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				} else {
					time.Sleep(5 * time.Millisecond)
				}
				l.mu.Lock()
				l.codes[code]++
				if code >= 200 && code < 300 {
					l.acked[ts] = true
				}
				l.answers.Broadcast()
				l.mu.Unlock()
				time.Sleep(l.pause)
			}
		}()
	}
	wg.Wait()
}

// missing returns how many acknowledged points are not in InfluxDB.
func (l *loader) missing(t *testing.T, db *testenv.DB) int {
	t.Helper()
	stored := map[int64]bool{}
	for _, s := range db.Query(t, `SELECT "n" FROM "durability"`) {
		for _, v := range s.Values {
			n, err := v[0].(json.Number).Int64()
			if err != nil {
				t.Fatal(err)
			}
			stored[n] = true
		}
	}
	missing := 0
	for ts := range l.acked {
		if !stored[ts] {
			missing++
		}
	}
	return missing
}

func newKeyDB(t *testing.T) (path, key string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "api_keys.db")
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, key, err = s.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return path, key
}

// TestInfluxOutageLosesNothing stops InfluxDB in the middle of a load and
// starts it again: the gateway keeps accepting, and afterwards every
// acknowledged point is in InfluxDB.
func TestInfluxOutageLosesNothing(t *testing.T) {
	influx := testenv.StartInfluxDB(t, "metricgate")
	dbPath, key := newKeyDB(t)
	// Small batches and pacing after 6 of them (600 points): the backlog
	// the outage leaves is far over that, and new writes must still flow
	// while it drains.
	p := startProcess(t, "--db", dbPath, "--influx-url", influx.URL, "--influx-bucket", "metricgate",
		"--spool-dir", t.TempDir(), "--batch-wait", "50ms", "--batch-points", "100", "--pace-batches", "6",
		"--log-format", "text")

	// Each phase lasts until 2,000 more points are acknowledged: held back
	// rather than spooled, 8 workers would get about 8 writes a second in,
	// and a phase would not end within its 20 s.
	const phase = 2000
	l := newLoader(key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stop, restart int
	phases := make(chan string, 1)
	go func() {
		defer cancel()
		if !l.waitAcked(phase, 20*time.Second) {
			phases <- "before the outage"
			return
		}
		influx.Stop(t)
		stop = l.acknowledged()
		if !l.waitAcked(stop+phase, 20*time.Second) {
			phases <- "while InfluxDB was down: writes were held back, not spooled"
			return
		}
		influx.Start(t)
		restart = l.acknowledged()
		if !l.waitAcked(restart+phase, 20*time.Second) {
			phases <- "after InfluxDB restarted: new writes were held back while the outage's backlog drained"
			return
		}
		close(phases)
	}()
	l.run(ctx, 8, func() string { return p.base })
	if failed, ok := <-phases; ok {
		t.Errorf("fewer than %d points acknowledged in 20 s %s (status counts %v)", phase, failed, l.codes)
	}
	backlogAfterLoad := p.spoolPoints(t)
	p.waitDrained(t, 60*time.Second)

	missing := l.missing(t, influx.DB("metricgate"))
	during, after := restart-stop, len(l.acked)-restart
	t.Logf("%d points acknowledged: %d while InfluxDB was down, %d after it restarted (status counts %v); %d in the spool when the load stopped, %d missing from InfluxDB",
		len(l.acked), during, after, l.codes, backlogAfterLoad, missing)
	if missing != 0 {
		t.Errorf("got %d acknowledged and %d missing, want none missing", len(l.acked), missing)
	}
	if l.codes[503] > 0 || l.codes[500] > 0 {
		t.Errorf("the gateway refused requests during the outage (%v); it should spool them", l.codes)
	}
	p.stop(t)
}

// TestKillLosesNothing kills the apiserver with SIGKILL under load and
// starts it again on the same spool: every acknowledged point arrives.
func TestKillLosesNothing(t *testing.T) {
	for _, mode := range []string{"always", "interval"} {
		t.Run(mode, func(t *testing.T) {
			db := testenv.InfluxDB(t)
			dbPath, key := newKeyDB(t)
			spoolDir := t.TempDir()
			args := []string{"--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name,
				"--spool-dir", spoolDir, "--fsync", mode, "--batch-wait", "200ms", "--log-format", "text"}
			var mu sync.Mutex
			p := startProcess(t, args...)
			base := func() string { mu.Lock(); defer mu.Unlock(); return p.base }

			// The kill comes after 1,000 acknowledged points, and the load
			// goes on until 50 requests have failed against the dead
			// process, so some were in flight when it died.
			l := newLoader(key)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				defer cancel()
				if !l.waitAcked(1000, 20*time.Second) {
					t.Errorf("fewer than 1000 points acknowledged in 20 s")
					return
				}
				p.kill()
				l.waitFor(func() bool { return l.codes[0] >= 50 }, 10*time.Second)
			}()
			l.run(ctx, 8, base)
			mu.Lock()
			p = startProcess(t, args...)
			mu.Unlock()
			p.waitDrained(t, 60*time.Second)
			missing := l.missing(t, db)
			t.Logf("%d points acknowledged before and around the kill (status counts %v), %d missing", len(l.acked), l.codes, missing)
			if len(l.acked) < 100 || missing != 0 {
				t.Errorf("got %d acknowledged and %d missing, want at least 100 and none missing", len(l.acked), missing)
			}
			p.stop(t)
		})
	}
}

// TestSpoolFull fills a small spool while InfluxDB is unreachable: requests
// past the limit get 503 with Retry-After, and once InfluxDB is back exactly
// the acknowledged points arrive.
func TestSpoolFull(t *testing.T) {
	db := testenv.InfluxDB(t)
	dbPath, key := newKeyDB(t)
	spoolDir := t.TempDir()
	dead := "http://" + testenv.FreeAddr(t)
	p := startProcess(t, "--db", dbPath, "--influx-url", dead, "--influx-bucket", db.Name,
		"--spool-dir", spoolDir, "--spool-max-bytes", "8192", "--drain-timeout", "100ms", "--log-format", "text")

	l := newLoader(key)
	var full *http.Response
	for i := 0; i < 500 && full == nil; i++ {
		if resp := l.send(t, p.base); resp.StatusCode == 503 {
			full = resp
		} else if resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200 or 503", resp.StatusCode)
		}
	}
	if full == nil || full.Header.Get("Retry-After") == "" {
		t.Fatalf("the spool never filled up (got %d acknowledged), want 503 with Retry-After", len(l.acked))
	}
	resp, err := http.Get(p.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("readyz with a full spool = %d, want 503", resp.StatusCode)
	}
	p.stop(t)

	p = startProcess(t, "--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name, "--spool-dir", spoolDir, "--log-format", "text")
	p.waitDrained(t, 30*time.Second)
	if n, missing := db.Count(t, "durability", "n"), l.missing(t, db); n != int64(len(l.acked)) || missing != 0 {
		t.Errorf("InfluxDB has %d points, %d acknowledged ones missing; want exactly the %d acknowledged", n, missing, len(l.acked))
	}
	p.stop(t)
}

// send submits the loader's next point to base, records it if
// acknowledged, and returns the answer (its body closed).
func (l *loader) send(t *testing.T, base string) *http.Response {
	t.Helper()
	ts := l.next.Add(1)
	body := fmt.Sprintf(`{"measurement": "durability", "field": "n", "value": %d, "timestamp": %d}`, ts, ts)
	req, _ := http.NewRequest("POST", base+"/api/submit", strings.NewReader(body))
	req.Header.Set("X-API-Key", l.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		l.mu.Lock()
		l.acked[ts] = true
		l.mu.Unlock()
	}
	return resp
}

// TestSecondGatewayOnOneSpoolRefused starts a second apiserver on the spool
// directory of a running one, as a unit started twice would: it exits at
// once with an error naming the directory and the first one's pid, and
// the first loses nothing.
func TestSecondGatewayOnOneSpoolRefused(t *testing.T) {
	db := testenv.InfluxDB(t)
	dbPath, key := newKeyDB(t)
	spoolDir := t.TempDir()
	args := []string{"--db", dbPath, "--influx-url", db.URL, "--influx-bucket", db.Name, "--spool-dir", spoolDir, "--log-format", "text"}
	p := startProcess(t, args...)
	l := newLoader(key)
	for range 100 {
		l.send(t, p.base)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, os.Args[0], append([]string{"--listen", "127.0.0.1:0", "--admin-listen", ""}, args...)...)
	second.Env = append(os.Environ(), "APISERVER_TEST_EXEC=1")
	out, err := second.CombinedOutput()
	want := fmt.Sprintf("%s is held by process %d", spoolDir, p.cmd.Process.Pid)
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "spool directory locked") || !strings.Contains(string(out), want) {
		t.Errorf("second apiserver on the same spool: exit %v, output:\n%s\nwant it refused at once, naming the directory and %q", err, out, want)
	}

	for range 100 {
		l.send(t, p.base)
	}
	p.stop(t)
	if n, missing := db.Count(t, "durability", "n"), l.missing(t, db); len(l.acked) != 200 || n != 200 || missing != 0 {
		t.Errorf("%d acknowledged, %d in InfluxDB, %d missing; want 200, 200, none", len(l.acked), n, missing)
	}
}
