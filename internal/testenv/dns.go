package testenv

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSServer is a DNS server on a loopback UDP port, for tests of keys bound
// to a DNS name: it answers A and AAAA queries from names the test sets,
// NXDOMAIN for any other name, and can be made to fail (SERVFAIL, as a
// broken upstream does) or to hold its answers until the test lets them
// go, so a test decides what a look-up sees and when. Resolver returns a
// net.Resolver that asks it and nothing else.
type DNSServer struct {
	conn net.PacketConn

	mu      sync.Mutex
	records map[string][]netip.Addr // by lower-case name with the final dot
	failing bool
	hold    *Hold
	asked   map[string]int // A queries by name
}

// Hold keeps a DNSServer's answers back from the time Hold was called
// until Release. Asked is closed when the first query arrives meanwhile.
type Hold struct {
	Asked    <-chan struct{}
	asked    chan struct{}
	once     sync.Once
	released chan struct{}
	release  sync.Once
}

// Release lets the held answers go, and those of later queries.
func (h *Hold) Release() { h.release.Do(func() { close(h.released) }) }

// StartDNS starts a DNS server on 127.0.0.1 for the test and stops it when
// the test ends.
func StartDNS(t testing.TB) *DNSServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &DNSServer{conn: conn, records: map[string][]netip.Addr{}, asked: map[string]int{}}
	done := make(chan struct{})
	go func() { defer close(done); d.serve() }()
	t.Cleanup(func() {
		d.mu.Lock()
		if d.hold != nil {
			d.hold.Release()
		}
		d.mu.Unlock()
		conn.Close()
		<-done
	})
	return d
}

// Set makes name resolve to addrs (none: the name exists without
// addresses).
func (d *DNSServer) Set(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	d.records[fqdn(name)] = as
}

// Fail makes every answer SERVFAIL while failing is true.
func (d *DNSServer) Fail(failing bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failing = failing
}

// Hold keeps answers back until the Hold it returns is released.
func (d *DNSServer) Hold() *Hold {
	asked := make(chan struct{})
	h := &Hold{Asked: asked, asked: asked, released: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold = h
	return h
}

// Asked returns how many A queries for name the server has received: one
// per look-up that reached it.
func (d *DNSServer) Asked(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[fqdn(name)]
}

// Resolver returns a resolver that sends every query to this server.
func (d *DNSServer) Resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

func (d *DNSServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		query := append([]byte(nil), buf[:n]...)
		go d.answer(query, from)
	}
}

// answer replies to one query, after the hold in force when it arrived.
func (d *DNSServer) answer(query []byte, from net.Addr) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return
	}
	q, err := p.Question()
	if err != nil {
		return
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	if q.Type == dnsmessage.TypeA {
		d.asked[name]++
	}
	hold, failing := d.hold, d.failing
	addrs, known := d.records[name]
	d.mu.Unlock()
	if hold != nil {
		hold.once.Do(func() { close(hold.asked) })
		<-hold.released
	}
	rcode := dnsmessage.RCodeSuccess
	switch {
	case failing:
		rcode = dnsmessage.RCodeServerFailure
	case !known:
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return
	}
	if rcode == dnsmessage.RCodeSuccess {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 30}
		for _, a := range addrs {
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return
	}
	d.conn.WriteTo(msg, from)
}

// fqdn is name in lower case with the final dot, as queries carry it.
func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}
