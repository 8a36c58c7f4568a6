// Package metrics holds metricgate's Prometheus collectors, registered on a
// registry of their own (with the Go runtime and process collectors) and
// served by Handler in the Prometheus text format.
//
// No series carries a per-key label: the number of keys is unbounded, and a
// key's id in a label would tell anyone who can read /metrics which keys are
// in use. Per-key usage is in the key store (keyctl show).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Reasons an authentication failed, the values of the reason label of
// AuthFailures.
const (
	AuthUnknown      = "unknown"       // no key has that value
	AuthRevoked      = "revoked"       // the key was revoked
	AuthExpired      = "expired"       // the key's expiry has passed
	AuthHostMismatch = "host_mismatch" // the caller is not the key's host
	AuthNoKey        = "no_key"        // the request carried no key
	AuthThrottled    = "throttled"     // the address failed too often and must wait
)

// AuthReasons lists every reason, so each series exists from the start.
var AuthReasons = []string{AuthUnknown, AuthRevoked, AuthExpired, AuthHostMismatch, AuthNoKey, AuthThrottled}

// States of the rate limits, the values of the state label of LimitsState.
const (
	LimitsLocal      = "local"       // each replica limits alone (no --limits)
	LimitsShared     = "shared"      // the limits are shared through Redis
	LimitsFailOpen   = "fail_open"   // Redis is unreachable: local limits, a share each
	LimitsFailClosed = "fail_closed" // Redis is unreachable: limited keys get 429
)

// LimitsStates lists every state, so each series exists from the start.
var LimitsStates = []string{LimitsLocal, LimitsShared, LimitsFailOpen, LimitsFailClosed}

// Reasons a PROXY protocol header was refused, the values of the reason
// label of ProxyHeaderRefused.
const (
	ProxyUntrusted = "untrusted" // a header from an address outside --trusted-proxy
	ProxyMalformed = "malformed" // a header that does not parse
	ProxyMissing   = "missing"   // no header from a trusted proxy, which must send one
)

// ProxyReasons lists every reason, so each series exists from the start.
var ProxyReasons = []string{ProxyUntrusted, ProxyMalformed, ProxyMissing}

// Metrics is the gateway's set of collectors. Its fields are safe for
// concurrent use; the spool and forwarder update the Spool* and Forward*
// ones, the HTTP server the rest.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors. Register further collectors here.
	Registry *prometheus.Registry

	// Requests counts HTTP requests by route pattern ("POST /api/submit",
	// "unmatched" for none) and status code.
	Requests *prometheus.CounterVec
	// RequestDuration observes the seconds from a request's arrival to its
	// answer, by route pattern.
	RequestDuration *prometheus.HistogramVec
	// AuthFailures counts refused authentications by reason (AuthUnknown,
	// ...).
	AuthFailures *prometheus.CounterVec
	// AuthLogsSuppressed counts failed authentications not logged because
	// their source had one logged within the minute.
	AuthLogsSuppressed prometheus.Counter
	// AuthLookupFailures counts requests answered 503 because their key's
	// DNS name could not be looked up; they are not refusals.
	AuthLookupFailures prometheus.Counter
	// PointsAccepted counts points the gateway accepted for writing.
	PointsAccepted prometheus.Counter
	// RateLimited counts requests refused because their key was over its
	// rate.
	RateLimited prometheus.Counter
	// Paced counts writes held back by pacing, and PacedSeconds the time
	// they were held.
	Paced        prometheus.Counter
	PacedSeconds prometheus.Counter
	// BodyWaits counts writes that waited for room to hold their body
	// (--body-memory), and BodyWaitSeconds the time they waited, including
	// those refused with 503 when none came.
	BodyWaits       prometheus.Counter
	BodyWaitSeconds prometheus.Counter

	// LimitsState is 1 for the state the rate limits are in (LimitsLocal,
	// ...) and 0 for the others; LimitsStateChanges counts the changes
	// into each state.
	LimitsState        *prometheus.GaugeVec
	LimitsStateChanges *prometheus.CounterVec
	// LimitsLeases counts the leases of tokens asked of Redis, and
	// LimitsRedisErrors the calls to Redis that failed.
	LimitsLeases      prometheus.Counter
	LimitsRedisErrors prometheus.Counter
	// ProxyHeaderRefused counts connections closed for their PROXY
	// protocol header, by reason (ProxyUntrusted, ...).
	ProxyHeaderRefused *prometheus.CounterVec

	// PointsForwarded counts points the forwarder delivered from the spool
	// to InfluxDB.
	PointsForwarded prometheus.Counter
	// PointsDeadLettered counts points InfluxDB refused for good, moved out
	// of the spool.
	PointsDeadLettered prometheus.Counter
	// ForwardDuration observes the seconds one forward to InfluxDB took.
	ForwardDuration prometheus.Histogram
	// ForwardErrors counts forwards to InfluxDB that failed.
	ForwardErrors prometheus.Counter

	// KeysQuarantined counts the keys this gateway quarantined because
	// InfluxDB kept refusing their points; QuarantinedRequests the writes
	// refused because their key was quarantined, by any gateway.
	KeysQuarantined     prometheus.Counter
	QuarantinedRequests prometheus.Counter

	// routes caches the Requests and RequestDuration series of each route
	// and status seen, so Observe does not hash label values per request.
	routes sync.Map // routeStatus -> routeSeries
}

type routeStatus struct {
	route  string
	status int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// Observe counts one request to route (a mux pattern; "" for none) that was
// answered with status after latency.
func (m *Metrics) Observe(route string, status int, latency time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	k := routeStatus{route, status}
	v, ok := m.routes.Load(k)
	if !ok {
		v, _ = m.routes.LoadOrStore(k, routeSeries{
			requests: m.Requests.WithLabelValues(route, strconv.Itoa(status)),
			duration: m.RequestDuration.WithLabelValues(route),
		})
	}
	rs := v.(routeSeries)
	rs.requests.Inc()
	rs.duration.Observe(latency.Seconds())
}

// New returns a Metrics with every collector registered on a fresh
// registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metricgate_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "metricgate_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metricgate_auth_failures_total",
			Help: "Refused authentications by reason: unknown, revoked, expired, host_mismatch, no_key, throttled.",
		}, []string{"reason"}),
		AuthLogsSuppressed: counter("metricgate_auth_failure_logs_suppressed_total", "Failed authentications not logged because their address (IPv6: its /64) had one logged within the minute."),
		AuthLookupFailures: counter("metricgate_auth_lookup_failures_total", "Requests answered 503 because their key's DNS name could not be looked up."),
		PointsAccepted:     counter("metricgate_points_accepted_total", "Points accepted for writing."),
		RateLimited:        counter("metricgate_rate_limited_requests_total", "Requests refused with 429 because their key was over its rate limit."),
		Paced:              counter("metricgate_paced_requests_total", "Writes held back before their body was read while the spool's backlog grew (--pace-batches)."),
		PacedSeconds:       counter("metricgate_paced_seconds_total", "Seconds writes were held back by pacing, summed."),
		BodyWaits:          counter("metricgate_body_memory_waits_total", "Writes that waited for room to hold their body (--body-memory), including those then refused with 503."),
		BodyWaitSeconds:    counter("metricgate_body_memory_wait_seconds_total", "Seconds writes waited for room to hold their body, summed."),
		LimitsState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metricgate_limits_state",
			Help: "1 for the state the rate limits are in: local (per replica), shared (through Redis), fail_open or fail_closed (Redis unreachable).",
		}, []string{"state"}),
		LimitsStateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metricgate_limits_state_changes_total",
			Help: "Changes of the rate limits' state, by the state changed to.",
		}, []string{"state"}),
		LimitsLeases:      counter("metricgate_limits_leases_total", "Leases of rate-limit tokens asked of Redis (each a round trip; requests spend the tokens locally)."),
		LimitsRedisErrors: counter("metricgate_limits_redis_errors_total", "Calls to Redis for the shared limits that failed."),
		ProxyHeaderRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metricgate_proxy_header_refused_total",
			Help: "Connections closed for their PROXY protocol header: untrusted (from outside --trusted-proxy), malformed, missing (a trusted proxy sent none).",
		}, []string{"reason"}),
		PointsForwarded:    counter("metricgate_spool_points_forwarded_total", "Points forwarded from the spool to InfluxDB."),
		PointsDeadLettered: counter("metricgate_spool_points_dead_lettered_total", "Points InfluxDB refused for good, moved from the spool to the dead-letter file."),
		ForwardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "metricgate_spool_forward_duration_seconds",
			Help:    "Time one forward of spooled points to InfluxDB took.",
			Buckets: prometheus.DefBuckets,
		}),
		ForwardErrors:       counter("metricgate_spool_forward_errors_total", "Forwards of spooled points to InfluxDB that failed."),
		KeysQuarantined:     counter("metricgate_keys_quarantined_total", "Keys this gateway quarantined because InfluxDB kept refusing their points (--quarantine-after)."),
		QuarantinedRequests: counter("metricgate_quarantined_requests_total", "Writes refused with 429 because their key is quarantined."),
	}
	for _, reason := range AuthReasons {
		m.AuthFailures.WithLabelValues(reason)
	}
	for _, state := range LimitsStates {
		m.LimitsState.WithLabelValues(state)
		m.LimitsStateChanges.WithLabelValues(state)
	}
	for _, reason := range ProxyReasons {
		m.ProxyHeaderRefused.WithLabelValues(reason)
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Requests, m.RequestDuration, m.AuthFailures, m.AuthLogsSuppressed, m.AuthLookupFailures, m.PointsAccepted, m.RateLimited, m.Paced, m.PacedSeconds,
		m.BodyWaits, m.BodyWaitSeconds,
		m.LimitsState, m.LimitsStateChanges, m.LimitsLeases, m.LimitsRedisErrors, m.ProxyHeaderRefused,
		m.PointsForwarded, m.PointsDeadLettered, m.ForwardDuration, m.ForwardErrors,
		m.KeysQuarantined, m.QuarantinedRequests,
	)
	return m
}

// counter returns a counter with its name and help.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// WatchSpool registers the spool's size and depth, read from stats at each
// scrape so they are never stale.
func (m *Metrics) WatchSpool(stats func() (bytes, points int64)) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metricgate_spool_bytes",
			Help: "Bytes in the spool not yet forwarded to InfluxDB.",
		}, func() float64 { b, _ := stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "metricgate_spool_depth_points",
			Help: "Points in the spool not yet forwarded to InfluxDB.",
		}, func() float64 { _, p := stats(); return float64(p) }),
	)
}

// WatchKeystore registers how far behind its key store the key cache is:
// the seconds since it last applied a change or found the store current,
// read from behind at each scrape. A replica that keeps serving through a
// PostgreSQL outage shows it here.
func (m *Metrics) WatchKeystore(behind func() time.Duration) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "metricgate_keystore_behind_seconds",
		Help: "Seconds since the key cache last applied a change from the key store or polled it and found it current.",
	}, func() float64 { return behind().Seconds() }))
}

// SetLimitsState records that the rate limits are now in state (LimitsLocal,
// ...): its gauge is 1, the others' 0, and the change is counted.
func (m *Metrics) SetLimitsState(state string) {
	for _, s := range LimitsStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.LimitsState.WithLabelValues(s).Set(v)
	}
	m.LimitsStateChanges.WithLabelValues(state).Inc()
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
