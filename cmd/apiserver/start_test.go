package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
)

// running is the apiserver run in the test's own process by run, as main
// runs it.
type running struct {
	base   string // the ingest listener's URL
	admin  string // the admin listener's URL
	logs   *testenv.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startRun runs the apiserver with args on a port it binds itself
// (--listen 127.0.0.1:0), waits until it has said which, and stops it at
// the end of the test unless the test stopped it. scheme is http or https.
func startRun(t *testing.T, scheme string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &testenv.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, args...), func(string) string { return "" }, r.logs)
		close(r.done)
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("apiserver log:\n%s", r.logs.String())
		}
	})
	r.base = scheme + "://" + boundAddr(t, "listening", r.logs.String, r.done)
	r.admin = scheme + "://" + boundAddr(t, "admin listening", r.logs.String, r.done)
	return r
}

// stop cancels run's context, as SIGTERM does, and returns what run
// returned; after the first call it returns nil.
func (r *running) stop() error {
	r.cancel()
	return <-r.done
}

// boundAddr waits for the apiserver's log line msg (listening or admin
// listening) in what read returns, in JSON or text (--log-format text),
// and returns the address it names. It fails the test if exited yields
// first (run returned) or after 15 s.
func boundAddr(t *testing.T, msg string, read func() string, exited <-chan error) string {
	t.Helper()
	m := regexp.QuoteMeta(msg)
	line := regexp.MustCompile(`(?:"msg":"` + m + `","addr":"|msg="?` + m + `"? addr=)([^\s",]+)`)
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if found := line.FindStringSubmatch(read()); found != nil {
			return found[1]
		}
		select {
		case err := <-exited:
			t.Fatalf("the apiserver exited before listening: %v\n%s", err, read())
		case <-deadline.C:
			t.Fatalf("no %q line in the apiserver's log after 15 s:\n%s", msg, read())
		case <-tick.C:
		}
	}
}
