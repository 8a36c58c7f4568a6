package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// requestInfo collects what the handlers learn about a request, for its one
// log line.
type requestInfo struct {
	id     string
	keyID  int64
	points int
	err    error
}

// infoOf returns what observe keeps of the request w answers, or nil
// outside observe. It is found through the writer, which observe hands to
// the handlers, rather than the request's context: a context value would
// cost a copy of the request and a context, two allocations and 3.5% of
// a one-point write's CPU. It looks through writers that
// wrap observe's and say so (Unwrap), as http.ResponseController does.
func infoOf(w http.ResponseWriter) *requestInfo {
	for {
		switch o := w.(type) {
		case *observed:
			return &o.info
		case interface{ Unwrap() http.ResponseWriter }:
			w = o.Unwrap()
		default:
			return nil
		}
	}
}

// requestIDOf returns the id of the request w answers, or "" outside
// observe.
func requestIDOf(w http.ResponseWriter) string {
	if info := infoOf(w); info != nil {
		return info.id
	}
	return ""
}

// observed is what observe keeps of one request: its status, what the
// handlers learn of it, and the value of its X-Request-Id header, here so
// that it costs no allocation of its own.
type observed struct {
	statusRecorder
	info     requestInfo
	idHeader [1]string
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap returns the writer s wraps, so http.ResponseController reaches
// the connection (to set a body's read deadline).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// observe is the gateway's one middleware, so each request costs one
// status recorder, which holds what the handlers learn of it (see
// infoOf), and no copy of the request. It gives the request an id (see
// requestID), runs it, then counts it in m by route pattern and status and
// writes its one line to access (when set): method, path, status, latency,
// request id, key id and point count, and the precise reason for a failure.
// It never logs the query string, which may hold a key (p=). It must wrap
// the mux directly: the mux records the pattern it matched in the request
// it is given.
func observe(access *AccessLog, m *metrics.Metrics, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &observed{statusRecorder: statusRecorder{ResponseWriter: w}} // one allocation for all three
		info := &o.info
		info.id = requestID(r)
		o.idHeader[0] = info.id
		w.Header()["X-Request-Id"] = o.idHeader[:] // of capacity 1: Header.Add copies it before it grows
		mux.ServeHTTP(o, r)
		latency := time.Since(start)

		status := o.status
		if status == 0 {
			status = http.StatusOK
		}
		m.Observe(r.Pattern, status, latency)
		if access.logs(status) {
			access.write(&accessEntry{
				time: start.Add(latency), method: r.Method, path: r.URL.Path, status: status, latency: latency,
				remote: r.RemoteAddr, requestID: info.id, keyID: info.keyID, points: info.points, err: info.err,
			})
		}
	})
}

// clientAddr returns the caller's address: the TCP peer, or, when the peer
// is a trusted proxy, the right-most address in X-Forwarded-For that is not
// itself a trusted proxy. It is unmapped and without a zone, which a
// client could fill with any text for the logs and the key store.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := peerAddr(r)
	if !ok {
		return netip.Addr{}, false
	}
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer, true
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = a.Unmap().WithZone("")
		if !isTrusted(addr, trusted) {
			break
		}
	}
	return addr, true
}

// ConnContext is for http.Server's ConnContext: it gives each connection a
// place for its peer's address, which the connection's first request
// parses from RemoteAddr and the others reuse, with its text for the usage
// records: on a keep-alive connection every request has the same
// RemoteAddr. It does not look at c's address: a PROXY protocol
// connection reads its header to know it, which must be done by the
// connection's own goroutine, never by the accept loop that calls this.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, new(connPeer))
}

type peerKey struct{}

// connPeer is the peer of one connection, once a request parsed it. It is
// atomic because the requests of an HTTP/2 connection run at once.
type connPeer struct{ p atomic.Pointer[peer] }

// peer is a connection's remote address as clientAddr wants it: unmapped,
// without a zone.
type peer struct {
	remote string // the RemoteAddr it was parsed from
	addr   netip.Addr
	text   string // addr.String()
}

// peerAddr returns r's peer: the one its connection keeps (see
// ConnContext), or else parsed from RemoteAddr, and kept for the
// connection's next requests. A request without a connection's place, as
// tests build them, is parsed each time. It returns false when RemoteAddr
// is no address.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	cp, _ := r.Context().Value(peerKey{}).(*connPeer)
	if cp != nil {
		if p := cp.p.Load(); p != nil && p.remote == r.RemoteAddr {
			return p.addr, true
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap().WithZone("")
	if cp != nil {
		cp.p.Store(&peer{remote: r.RemoteAddr, addr: a, text: a.String()})
	}
	return a, true
}

// addrText returns addr.String(): the text its connection keeps when addr
// is r's peer, as it is unless a trusted proxy named another caller.
func addrText(r *http.Request, addr netip.Addr) string {
	if cp, _ := r.Context().Value(peerKey{}).(*connPeer); cp != nil {
		if p := cp.p.Load(); p != nil && p.addr == addr && p.remote == r.RemoteAddr {
			return p.text
		}
	}
	return addr.String()
}

// ParseTrustedProxy reads one --trusted-proxy: an address or a CIDR range,
// in the canonical form client addresses are matched in, so an
// IPv4-mapped range such as ::ffff:10.0.0.0/104 is the IPv4 range
// 10.0.0.0/8 and matches the callers it names. Anything else (a DNS name
// among them) is an error naming it.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	h, err := keystore.CanonicalHostname(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR range or address: %q", s)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(h)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR range or address: %q", s)
	}
	return p, nil
}

// The widest trusted proxy ranges taken without a warning: anyone in a
// trusted range may name any caller in X-Forwarded-For.
const (
	wideProxy4 = 8
	wideProxy6 = 32
)

// warnWideProxies logs a warning for each trusted proxy range wider than
// a /8 (IPv4) or /32 (IPv6), such as 0.0.0.0/0, which makes every client
// able to claim any address.
func warnWideProxies(log *slog.Logger, trusted []netip.Prefix) {
	for _, p := range trusted {
		least := wideProxy6
		if p.Addr().Is4() {
			least = wideProxy4
		}
		if p.Bits() < least {
			log.Warn("a trusted proxy range is wider than a /"+strconv.Itoa(least)+
				": every address in it may claim to be any caller in X-Forwarded-For", "trusted_proxy", p.String())
		}
	}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// headerValue returns the first value of h's header key, as h.Get(key)
// does, for a key in canonical form (http.CanonicalHeaderKey), which it
// looks up as it is: h.Get checks and canonicalises the key again on every
// call, about 55 ns for each of the headers a write reads.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeJSON is the one place responses are encoded.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readJSON decodes a request body of at most max bytes, one JSON object,
// into v, refusing fields v does not have, so a misspelt field is an error
// rather than ignored. It returns errInvalidRequest naming the field at
// fault, or an *http.MaxBytesError.
func readJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the body is empty; send a JSON object", errInvalidRequest)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("%w: %q must be %s, not %s", errInvalidRequest, typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Errorf("%w: the body must be a JSON object, not %s", errInvalidRequest, typeErr.Value)
	}
	return fmt.Errorf("%w: %s", errInvalidRequest, strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names what JSON value fits t, for error messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	}
	return "an object"
}
