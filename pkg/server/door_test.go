package server_test

// The attacks of issue 17 ("Harden the door"), each run against a real
// gateway and shown to do no harm.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/server"
)

const badKey = "3b241101-e2bb-4255-8caf-4136c566a962"

// jsonBatch is a JSON batch of points of field, of at least size bytes.
func jsonBatch(field string, size int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"field":%q,"value":%d,"timestamp":%d}`, field, i, 1700000000000000000+i)
	}
	return b.String() + "]"
}

// metricValue returns the value of the series named by series (with its
// labels, as /metrics writes them) on the gateway's ingest listener.
func metricValue(t *testing.T, g *gateway, series string) float64 {
	t.Helper()
	r := g.do(t, "GET", "/metrics", "")
	for _, l := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// TestNATLockOut is the attack of a client behind the same NAT (or the
// same proxy) as a host: ten bad keys from the shared address throttle it,
// and the host's good key must still pass, while bad keys keep getting
// 429.
func TestNATLockOut(t *testing.T) {
	g := startGateway(t, nil) // --auth-fail-burst 10
	_, good := g.key(t, "127.0.0.1")
	for i := range 10 {
		if r := g.submit(t, badKey, onePoint); r.status != 401 {
			t.Fatalf("bad key %d: got %d, want 401", i+1, r.status)
		}
	}
	if r := g.submit(t, badKey, onePoint); r.status != 429 {
		t.Fatalf("the 11th bad key: got %d, want 429: the address is not throttled", r.status)
	}
	for i := range 3 {
		if r := g.submit(t, good, onePoint); r.status != 200 {
			t.Fatalf("the host's good key %d from the throttled address: got %d %s, want 200", i+1, r.status, r.body)
		}
	}
	if r := g.submit(t, badKey, onePoint); r.status != 429 {
		t.Errorf("a bad key after the good ones: got %d, want 429: a good key must not unthrottle the address", r.status)
	}
	if n := g.count(t, "custom_metrics", "x"); n != 1 {
		t.Errorf("got %d points, want the host's (one point, three times the same)", n)
	}
}

// TestIPv6Rotation is the attack of an IPv6 client that takes a new
// address in its /64 after each failure: the gateway counts the /64, so
// the 11th failure from anywhere in it gets 429, while another /64 does
// not; a good key bound to the /64 still passes.
func TestIPv6Rotation(t *testing.T) {
	g := startGateway(t, func(cfg *server.Config) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	_, good := g.key(t, "2001:db8:0:7::/64")
	from := func(i int) string { return fmt.Sprintf("2001:db8:0:7:%x::%x", i, i+1) }
	for i := range 10 {
		if r := g.submit(t, badKey, onePoint, "X-Forwarded-For", from(i)); r.status != 401 {
			t.Fatalf("bad key %d from %s: got %d, want 401", i+1, from(i), r.status)
		}
	}
	if r := g.submit(t, badKey, onePoint, "X-Forwarded-For", from(10)); r.status != 429 {
		t.Errorf("the 11th bad key, from a fresh address %s in the same /64: got %d, want 429", from(10), r.status)
	}
	if r := g.submit(t, badKey, onePoint, "X-Forwarded-For", "2001:db8:0:8::1"); r.status != 401 {
		t.Errorf("a bad key from the next /64: got %d, want 401", r.status)
	}
	if r := g.submit(t, good, onePoint, "X-Forwarded-For", from(11)); r.status != 200 {
		t.Errorf("a good key from the throttled /64: got %d %s, want 200", r.status, r.body)
	}
}

// TestKeyTooLong checks that a key header longer than any key is refused
// as an unknown key, without being looked up.
func TestKeyTooLong(t *testing.T) {
	g := startGateway(t, nil)
	r := g.submit(t, strings.Repeat("k", 100<<10), onePoint)
	if r.status != 401 {
		t.Fatalf("a 100 KiB key: got %d %s, want 401", r.status, r.body)
	}
	if line := lastLogLine(t, g.logs); !strings.Contains(fmt.Sprint(line["error"]), "the key is 102400 bytes, longer than 64") {
		t.Errorf("the log says %v, want the key's length", line["error"])
	}
	if got := metricValue(t, g, `metricgate_auth_failures_total{reason="unknown"}`); got != 1 {
		t.Errorf("unknown-key failures = %v, want 1", got)
	}
}

// startDNSGateway starts a gateway whose DNS look-ups go to a DNS server
// of the test's own, with a key bound to web-1.metricgate.test, which
// resolves to 127.0.0.1.
func startDNSGateway(t *testing.T) (*gateway, *testenv.DNSServer, string) {
	t.Helper()
	dns := testenv.StartDNS(t)
	dns.Set("web-1.metricgate.test", "127.0.0.1")
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) { cfg.Resolver = dns.Resolver() })
	_, key := g.key(t, "web-1.metricgate.test")
	return g, dns, key
}

// TestDNSKnockOutOverHTTP is the DNS knock-out against the gateway: a
// client whose request starts the look-up of a host's name hangs up; the
// host's next request must be accepted, with no second look-up.
func TestDNSKnockOutOverHTTP(t *testing.T) {
	g, dns, key := startDNSGateway(t)
	hold := dns.Hold()
	ctx, hangUp := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/api/submit", strings.NewReader(onePoint))
	req.Header.Set("X-API-Key", key)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-hold.Asked
	hangUp()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client's request: %v, want it cancelled", err)
	}
	hold.Release()
	if r := g.submit(t, key, onePoint); r.status != 200 {
		t.Errorf("the host after the client hung up: got %d %s, want 200", r.status, r.body)
	}
	if n := dns.Asked("web-1.metricgate.test"); n != 1 {
		t.Errorf("%d look-ups, want 1: the one the client started, finished for the host", n)
	}
}

// TestDNSOutageOverHTTP checks that while a key's DNS name cannot be looked
// up (and no earlier answer is at hand), its host gets 503 with
// Retry-After rather than 401, and that these do not count as failed
// authentications: more of them than the throttle's burst leave the host
// unthrottled, and it is accepted once DNS answers.
func TestDNSOutageOverHTTP(t *testing.T) {
	g, dns, key := startDNSGateway(t)
	dns.Fail(true)
	for i := range 12 {
		r := g.submit(t, key, onePoint)
		if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "could not be looked up in DNS") {
			t.Fatalf("request %d during the outage: got %d %v %s, want 503 with Retry-After", i+1, r.status, r.header, r.body)
		}
	}
	if got := metricValue(t, g, "metricgate_auth_lookup_failures_total"); got != 12 {
		t.Errorf("lookup failures = %v, want 12", got)
	}
	for _, reason := range []string{"host_mismatch", "throttled"} {
		if got := metricValue(t, g, `metricgate_auth_failures_total{reason="`+reason+`"}`); got != 0 {
			t.Errorf("%s failures = %v, want 0: a DNS outage is no failed authentication", reason, got)
		}
	}
	if n := strings.Count(g.logs.String(), `"msg":"key's host name could not be looked up"`); n != 1 {
		t.Errorf("%d warnings about the look-up from one address in a minute, want 1", n)
	}
	dns.Fail(false)
	if r := g.submit(t, key, onePoint); r.status != 200 {
		t.Errorf("after the outage: got %d %s, want 200", r.status, r.body)
	}
}

// slowAnswer is how a request sent by slowSubmit ended.
type slowAnswer struct {
	took   time.Duration
	status int
	body   string
	err    error
}

// slowSubmit starts a submission with key, of a JSON body of size bytes
// that the test writes to the pipe it returns, at its own pace; the channel
// tells how the request ended. The pipe is closed when the test ends,
// before the gateway's cleanup, which waits for the request.
func slowSubmit(t *testing.T, g *gateway, key string, size int) (*io.PipeWriter, <-chan slowAnswer) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	req, err := http.NewRequest("POST", g.url+"/api/submit", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	done := make(chan slowAnswer, 1)
	start := time.Now()
	go func() {
		resp, err := http.DefaultClient.Do(req)
		a := slowAnswer{took: time.Since(start), err: err}
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.status, a.body = resp.StatusCode, string(b)
		}
		done <- a
	}()
	return pw, done
}

// TestSlowSender is the attack of a key that declares large bodies and
// sends them slowly, to hold the body memory for the server's whole read
// timeout (30 s in the apiserver; forever here, where the test server has
// none). Its key may hold only its share, so another key's body gets room
// at once, and its body must arrive within the body read timeout: the
// gateway answers 408 and gives the room back well before 30 s.
func TestSlowSender(t *testing.T) {
	const readTimeout = 3 * time.Second
	g := startGateway(t, func(c *server.Config) {
		// Room for a 100 KiB JSON body and its points (4x the body) is
		// 400 KiB: a key's share holds one, the total two.
		c.BodyMemory = 1 << 20
		c.BodyMemoryPerKey = 512 << 10
		c.BodyMemoryWait = 100 * time.Millisecond
		c.BodyReadTimeout = readTimeout
	})
	_, slowKey := g.key(t, "127.0.0.1")
	_, otherKey := g.key(t, "127.0.0.1")
	batch := func(field string) string { return jsonBatch(field, 100<<10) }

	body := batch("slow")
	pw, slowDone := slowSubmit(t, g, slowKey, len(body))
	if _, err := io.WriteString(pw, body[:1024]); err != nil {
		t.Fatal(err)
	}

	// Once the slow body holds its key's share, the key's next body finds
	// no room of its own: 429, not the whole gateway's 503.
	var r response
	for deadline := time.Now().Add(readTimeout); time.Now().Before(deadline); {
		if r = g.submit(t, slowKey, batch("same_key")); r.status == 429 {
			break
		}
	}
	if r.status != 429 || !strings.Contains(r.body, "this key may hold 524288 bytes of bodies at once") || r.header.Get("Retry-After") == "" {
		t.Fatalf("the slow key's second body: got %d %s, want 429 naming the key's share, with Retry-After", r.status, r.body)
	}
	if r := g.submit(t, otherKey, batch("other_key")); r.status != 200 {
		t.Errorf("another key's body while the slow one holds its share: got %d %s, want 200", r.status, r.body)
	}

	select {
	case a := <-slowDone:
		if a.took < readTimeout {
			t.Errorf("the slow request ended after %s, before the body read timeout of %s", a.took, readTimeout)
		}
		if a.status != 408 || !strings.Contains(a.body, "the request body was not received in time") {
			t.Errorf("the slow request: got %d %q (%v), want 408 saying the body was not received in time", a.status, a.body, a.err)
		}
		t.Logf("the slow sender was cut off after %s", a.took.Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatalf("the slow sender still holds its request after 20 s")
	}
	if r := g.submit(t, slowKey, batch("after")); r.status != 200 {
		t.Errorf("the slow key's next body, once its share was given back: got %d %s, want 200", r.status, r.body)
	}
}

// TestTrustedProxyMappedAndWide checks that a trusted proxy written as an
// IPv4-mapped range matches the IPv4 peers it names (it used to match
// none), and that ranges wider than a /8 or /32 are logged as a warning.
func TestTrustedProxyMappedAndWide(t *testing.T) {
	mapped, err := server.ParseTrustedProxy("::ffff:127.0.0.0/104")
	if err != nil || mapped != netip.MustParsePrefix("127.0.0.0/8") {
		t.Fatalf("ParseTrustedProxy(::ffff:127.0.0.0/104) = %v, %v; want 127.0.0.0/8", mapped, err)
	}
	g := startGateway(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{mapped, netip.MustParsePrefix("2001:db8::/16")}
	})
	_, key := g.key(t, "192.0.2.7")
	if r := g.submit(t, key, onePoint, "X-Forwarded-For", "192.0.2.7"); r.status != 200 {
		t.Errorf("through a proxy trusted as ::ffff:127.0.0.0/104: got %d %s, want 200", r.status, r.body)
	}
	logs := g.logs.String()
	if strings.Contains(logs, `"trusted_proxy":"127.0.0.0/8"`) {
		t.Errorf("a /8 is logged as too wide")
	}
	if !strings.Contains(logs, `"msg":"a trusted proxy range is wider than a /32: every address in it may claim to be any caller in X-Forwarded-For","trusted_proxy":"2001:db8::/16"`) {
		t.Errorf("no warning for the trusted range 2001:db8::/16: %s", logs)
	}
	wide := startGateway(t, func(c *server.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} })
	if !strings.Contains(wide.logs.String(), `wider than a /8: every address in it may claim to be any caller in X-Forwarded-For","trusted_proxy":"0.0.0.0/0"`) {
		t.Errorf("no warning for the trusted range 0.0.0.0/0")
	}
}

// FuzzParseTrustedProxy checks that any --trusted-proxy either is refused
// or gives a valid range with its host bits cleared, that parses to
// itself, and that an IPv4-mapped range of /96 or more is its IPv4 range.
func FuzzParseTrustedProxy(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.1", "::ffff:10.0.0.0/104", "::ffff:192.0.2.1", "2001:db8::/32",
		"0.0.0.0/0", "fe80::1%eth0", "proxy.example.com", "10.0.0.1/33", " 10.0.0.7/24 ", "::ffff:0:0/80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := server.ParseTrustedProxy(s)
		if err != nil {
			if !strings.Contains(err.Error(), "not a CIDR range or address") {
				t.Fatalf("ParseTrustedProxy(%q) error %v does not say what it wants", s, err)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
			t.Fatalf("ParseTrustedProxy(%q) = %v, want a valid masked range without a zone", s, p)
		}
		if again, err := server.ParseTrustedProxy(p.String()); err != nil || again != p {
			t.Fatalf("ParseTrustedProxy(%q) = %v, which parses to %v, %v", s, p, again, err)
		}
		if q, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && q.Addr().Is4In6() && q.Bits() >= 96 {
			if !p.Addr().Is4() || p.Bits() != q.Bits()-96 || !p.Contains(q.Addr().Unmap()) {
				t.Fatalf("ParseTrustedProxy(%q) = %v, want the IPv4 range it maps", s, p)
			}
		}
	})
}
