package keystore

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
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

// resolver matches caller addresses against key hostnames. DNS names are
// looked up with a time limit and the answers cached briefly, so a busy key
// costs one look-up per cacheTTL rather than one per request.
type resolver struct {
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)
	ttl      time.Duration
	timeout  time.Duration
	maxCache int

	mu    sync.Mutex
	cache map[string]cachedAddrs
}

type cachedAddrs struct {
	addrs   []netip.Addr
	err     error
	expires time.Time
}

func newResolver() *resolver {
	return &resolver{
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		ttl:      30 * time.Second,
		timeout:  2 * time.Second,
		maxCache: 10000,
		cache:    map[string]cachedAddrs{},
	}
}

// matches reports whether addr is the host named by hostname, which is in
// the form CanonicalHostname returns.
func (r *resolver) matches(ctx context.Context, hostname string, addr netip.Addr) (bool, error) {
	addr = addr.Unmap().WithZone("")
	if a, err := netip.ParseAddr(hostname); err == nil {
		return a.Unmap() == addr, nil
	}
	if strings.Contains(hostname, "/") {
		p, err := netip.ParsePrefix(hostname)
		return err == nil && p.Contains(addr), nil
	}
	addrs, err := r.resolve(ctx, hostname)
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

func (r *resolver) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	now := time.Now()
	r.mu.Lock()
	c, ok := r.cache[name]
	r.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.addrs, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.lookup(ctx, name)
	if err != nil {
		err = fmt.Errorf("look up %s: %w", name, err)
	}
	r.mu.Lock()
	if len(r.cache) >= r.maxCache {
		clear(r.cache)
	}
	ttl := r.ttl
	if err != nil {
		ttl = r.ttl / 6 // retry a failed look-up sooner
	}
	r.cache[name] = cachedAddrs{addrs: addrs, err: err, expires: now.Add(ttl)}
	r.mu.Unlock()
	return addrs, err
}
