package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

// What the InfluxDB-compatible endpoints say they are: the InfluxDB whose
// HTTP API they follow, 1.8, which serves both /write and /api/v2/write.
const (
	influxVersion = "1.8.10"
	influxBuild   = "OSS"
)

// The values of influxHeaders, shared by every answer; net/http only reads
// them, and one of length and capacity 1 is copied before it grows.
var (
	influxVersionHeader = []string{influxVersion}
	influxBuildHeader   = []string{influxBuild}
)

// Precisions the write endpoints accept, by the name each API gives them.
var (
	v2Precisions = map[string]time.Duration{
		"": time.Nanosecond, "ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
	}
	v1Precisions = map[string]time.Duration{
		"": time.Nanosecond, "n": time.Nanosecond, "ns": time.Nanosecond, "u": time.Microsecond, "us": time.Microsecond,
		"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	}
)

// influxV2API is POST /api/v2/write, InfluxDB 2.x's write endpoint, as
// Telegraf's outputs.influxdb_v2 and the client libraries call it: line
// protocol, the key as the token of "Authorization: Token <key>", 204 on
// success and {"code": ..., "message": ...} on failure. The bucket and org
// the client names are ignored: points go to the gateway's own bucket.
func influxV2API(cfg Config) writeAPI {
	return writeAPI{
		key:         tokenKey,
		parser:      lineProtocolParser(cfg, v2Precisions, "ns, us, ms or s"),
		ok:          noContent,
		errorBody:   influxV2Error,
		parseFactor: lineProtocolFactor,
	}
}

// influxV1API is POST /write, InfluxDB 1.x's write endpoint: line protocol,
// the key as the password (the p query parameter or the password of HTTP
// Basic auth; the user is ignored) or as the token of "Authorization: Token
// <key>", 204 on success and {"error": ...} on failure. The db and rp the
// client names are ignored.
func influxV1API(cfg Config) writeAPI {
	return writeAPI{
		key:         passwordKey,
		parser:      lineProtocolParser(cfg, v1Precisions, "n, u, ms, s, m or h"),
		ok:          noContent,
		errorBody:   influxV1Error,
		parseFactor: lineProtocolFactor,
	}
}

// lineProtocolFactor is the memory a line-protocol body's scan takes per
// byte of the body, about: the line protocol it writes, a little longer
// than the body (the host tag, timestamps), and a series hash per line.
const lineProtocolFactor = 2

// lineProtocolParser returns a writeAPI parser that reads line protocol with
// timestamps in the precision named by the precision query parameter. The
// parse function of each precision is made once, here: made per request,
// it was an allocation on every write's path.
func lineProtocolParser(cfg Config, precisions map[string]time.Duration, names string) func(*http.Request) (parseFunc, error) {
	opts := parseOptions(cfg)
	parses := make(map[string]parseFunc, len(precisions))
	for name, precision := range precisions {
		parses[name] = func(w *parseWork, body io.Reader, size int64, now time.Time, host string, grow func(int64) error) (*points.Lines, error) {
			o := opts
			o.Grow = grow
			return w.scan.Scan(body, size, precision, o, host, now)
		}
	}
	return func(r *http.Request) (parseFunc, error) {
		name := queryValue(r.URL.RawQuery, "precision")
		parse, ok := parses[name]
		if !ok {
			return nil, fmt.Errorf("%w: invalid precision %q (use %s)", errInvalidParam, name, names)
		}
		return parse, nil
	}
}

// tokenKey returns the token of "Authorization: Token <token>". A token of
// the form user:password, as InfluxDB 1.8 takes on its 2.x API, gives its
// password.
func tokenKey(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(headerValue(r.Header, "Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Token") {
		return ""
	}
	token = strings.TrimSpace(token)
	if i := strings.LastIndexByte(token, ':'); i >= 0 {
		token = token[i+1:]
	}
	return token
}

// passwordKey returns the key of an InfluxDB 1.x request: the p query
// parameter, else the token of "Authorization: Token", else the password of
// HTTP Basic auth.
func passwordKey(r *http.Request) string {
	if p := strings.TrimSpace(queryValue(r.URL.RawQuery, "p")); p != "" {
		return p
	}
	if k := tokenKey(r); k != "" {
		return k
	}
	if _, p, ok := r.BasicAuth(); ok {
		return strings.TrimSpace(p)
	}
	return ""
}

// queryValue returns the first value of key in raw, a URL's query, as
// url.Values.Get would, without building the map of every parameter for
// the one or two the write endpoints read on every request.
func queryValue(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(kv, ";") {
			continue // url.ParseQuery drops such a pair
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := queryUnescape(k)
		if err != nil || k != key {
			continue
		}
		if v, err = queryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}

// queryUnescape is url.QueryUnescape, without its pass over a string that
// has nothing to unescape: the write endpoints' parameters, as a rule.
func queryUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

func noContent(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusNoContent) }

// influxHeaders adds the headers InfluxDB puts on every answer, by which
// clients recognise it.
func influxHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Shared values, set without canonicalising the names again: on
		// every write's path.
		h := w.Header()
		h["X-Influxdb-Version"] = influxVersionHeader
		h["X-Influxdb-Build"] = influxBuildHeader
		next.ServeHTTP(w, r)
	})
}

// handlePing answers GET and HEAD /ping with 204, as InfluxDB does; clients
// call it to check the server is there.
func handlePing() http.Handler {
	return influxHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
}

// handleInfluxHealth answers GET /health as InfluxDB 2.x does while it runs.
// It says the gateway is up; /readyz says whether InfluxDB is reachable.
func handleInfluxHealth() http.Handler {
	return influxHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"name":    "influxdb",
			"message": "ready for queries and writes",
			"status":  "pass",
			"checks":  []string{},
			"version": influxVersion,
		})
	}))
}
