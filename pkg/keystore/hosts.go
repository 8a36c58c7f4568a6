package keystore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// CanonicalHostname validates a key's hostname and returns the form the store
// keeps: an IP address in canonical form (an IPv4-mapped IPv6 address becomes
// IPv4), a CIDR range with its host bits cleared, or a lower-case DNS name
// without a trailing dot. Anything else is ErrInvalidHostname.
func CanonicalHostname(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidHostname)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%w %q: zoned addresses are not supported", ErrInvalidHostname, h)
		}
		return a.Unmap().String(), nil
	}
	if strings.Contains(h, "/") {
		p, err := netip.ParsePrefix(h)
		if err != nil {
			return "", fmt.Errorf("%w %q: not a CIDR range", ErrInvalidHostname, h)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !validDNSName(name) {
		return "", fmt.Errorf("%w %q: want an IP address, a CIDR range or a DNS name", ErrInvalidHostname, h)
	}
	return name, nil
}

// validDNSName reports whether name is a DNS name of letters, digits and
// hyphens (RFC 1123 labels), not all-numeric at the top level so that a
// mistyped address such as 10.0.0.256 is not taken for a name.
func validDNSName(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}

// ErrLookup means a key bound to a DNS name could not be checked because
// the name could not be looked up (the DNS server failed or did not answer
// in time) and no earlier answer was at hand. The fault is DNS's, not the
// caller's: the gateway answers 503 and does not count it as a failed
// authentication.
var ErrLookup = errors.New("cannot look up the key's host name")

// UseResolver makes the store look up the DNS names keys are bound to
// through r instead of the system's resolver, for a gateway that must use
// particular DNS servers and for tests that run their own. Call it before
// the store is used.
func (s *Store) UseResolver(r *net.Resolver) {
	s.resolver.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip", host)
	}
}

// resolver matches caller addresses against key hostnames. It looks DNS
// names up so that no caller can make a key fail for its host:
//
//   - a look-up runs detached from the request that started it, with a
//     time limit of its own, so a client that hangs up does not cancel it;
//   - concurrent look-ups of one name are one look-up;
//   - only real answers are cached (addresses, or "no such name"), for
//     ttl; a failure is not, so the next request tries again;
//   - while look-ups fail, the last real answer is served for up to stale
//     after it expired (as RFC 8767 serves stale data), and a failure with
//     none at hand is ErrLookup rather than a mismatch.
type resolver struct {
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)
	ttl      time.Duration
	stale    time.Duration
	timeout  time.Duration
	maxCache int

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]answer
}

// answer is a real answer to a look-up: the name's addresses, none if it
// does not exist.
type answer struct {
	addrs []netip.Addr
	fresh time.Time // until then it is served without looking up again
	stale time.Time // until then it is served when a look-up fails
}

func newResolver() *resolver {
	return &resolver{
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		ttl:      30 * time.Second,
		stale:    24 * time.Hour,
		timeout:  2 * time.Second,
		maxCache: 10000,
		cache:    map[string]answer{},
	}
}

// matches reports whether addr is the host named by hostname, which is in
// the form CanonicalHostname returns, at now. A hostname that is not an
// address, a range or a valid DNS name (kept as written from a legacy
// database) matches nothing and is never looked up. It returns an error
// wrapping ErrLookup when a DNS name could not be looked up.
func (r *resolver) matches(ctx context.Context, hostname string, addr netip.Addr, now time.Time) (bool, error) {
	addr = addr.Unmap().WithZone("")
	if a, err := netip.ParseAddr(hostname); err == nil {
		return a.Unmap() == addr, nil
	}
	if strings.Contains(hostname, "/") {
		p, err := netip.ParsePrefix(hostname)
		return err == nil && p.Contains(addr), nil
	}
	if !validDNSName(hostname) {
		return false, nil
	}
	addrs, err := r.resolve(ctx, hostname, now)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// resolve returns name's addresses at now: from the cache while fresh,
// else from a look-up shared with every other request for name, else the
// last answer if still within stale. A request whose ctx ends first stops
// waiting, but the look-up goes on for the others and the cache.
func (r *resolver) resolve(ctx context.Context, name string, now time.Time) ([]netip.Addr, error) {
	r.mu.Lock()
	last, cached := r.cache[name]
	r.mu.Unlock()
	if cached && now.Before(last.fresh) {
		return last.addrs, nil
	}
	detached := context.WithoutCancel(ctx)
	ch := r.flight.DoChan(name, func() (any, error) { return r.refresh(detached, name, now) })
	var err error
	select {
	case res := <-ch:
		if res.Err == nil {
			return res.Val.([]netip.Addr), nil
		}
		err = res.Err
	case <-ctx.Done():
		err = fmt.Errorf("%w %s: gave up waiting: %w", ErrLookup, name, ctx.Err())
	}
	if cached && now.Before(last.stale) {
		return last.addrs, nil
	}
	return nil, err
}

// refresh looks name up and caches a real answer: its addresses, or none
// when the name does not exist. Any other failure is returned wrapping
// ErrLookup and leaves the cache alone.
func (r *resolver) refresh(ctx context.Context, name string, now time.Time) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.lookup(ctx, name)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		addrs = nil
	case err != nil:
		return nil, fmt.Errorf("%w %s: %w", ErrLookup, name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[name]; !ok && len(r.cache) >= r.maxCache {
		r.evict(now)
	}
	r.cache[name] = answer{addrs: addrs, fresh: now.Add(r.ttl), stale: now.Add(r.ttl + r.stale)}
	return addrs, nil
}

// evict makes room in a full cache: it drops the answers too old to serve
// at all, and if that frees nothing, the one that would be given up first.
func (r *resolver) evict(now time.Time) {
	var oldest string
	for name, a := range r.cache {
		if !now.Before(a.stale) {
			delete(r.cache, name)
		} else if oldest == "" || a.stale.Before(r.cache[oldest].stale) {
			oldest = name
		}
	}
	if len(r.cache) >= r.maxCache {
		delete(r.cache, oldest)
	}
}
