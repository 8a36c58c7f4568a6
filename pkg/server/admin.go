package server

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// The admin API manages keys over HTTP for the web console and for scripts.
// It is authenticated like the write endpoints (the key's host binding and
// failed-auth throttling apply) by a key with the admin scope, sent as
// "Authorization: Bearer <key>" or X-API-Key: headers that a browser never
// attaches to a request another site makes. State-changing requests from
// another origin are refused on top of that, and every change is recorded in
// the audit log under the admin key that made it.

// consoleCSP lets the console load its own script, style and data: images,
// and talk to its own origin; nothing inline, nothing from elsewhere.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// maxAdminBody is the largest admin API request body.
const maxAdminBody = 64 << 10

// adminFunc handles one admin API request from an authenticated admin, with
// the audit actor in the request's context. It returns the answer's status
// and body, or an error for writeErrorAs.
type adminFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

// adminGuard returns the wrapper of every admin API handler: it sets the
// security headers, refuses cross-origin changes, authenticates the caller's
// key, requires the admin scope and a JSON body, records the key's use, and
// names the key and address as the actor of the changes the handler makes.
func adminGuard(auth *authenticator, usage Usage, now func() time.Time) func(adminFunc) http.Handler {
	csrf := http.NewCrossOriginProtection()
	return func(f adminFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setAdminHeaders(w.Header())
			w.Header().Set("Cache-Control", "no-store")
			status, body, err := guarded(w, r, auth, csrf, usage, now, f)
			if err != nil {
				if errStatus, _ := statusOf(err); errStatus == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="metricgate admin"`)
				}
				writeErrorAs(w, err, adminError)
				return
			}
			writeJSON(w, status, body)
		})
	}
}

// guarded runs adminGuard's checks for r in order, cheapest and least
// revealing first, then f.
func guarded(w http.ResponseWriter, r *http.Request, auth *authenticator, csrf *http.CrossOriginProtection,
	usage Usage, now func() time.Time, f adminFunc) (int, any, error) {
	if err := csrf.Check(r); err != nil {
		return 0, nil, fmt.Errorf("%w: cross-origin request refused (%v)", errForbidden, err)
	}
	k, addr, err := auth.authenticate(w, r, adminKey(r))
	if err != nil {
		return 0, nil, err
	}
	if err := requireScope(k, keystore.ScopeAdmin); err != nil {
		return 0, nil, err
	}
	usage.Record(k.ID, addrText(r, addr), now(), 0)
	if err := requireJSONBody(r); err != nil {
		return 0, nil, err
	}
	actor := fmt.Sprintf("admin-api:key %d from %s", k.ID, addr)
	status, body, err := f(w, r.WithContext(keystore.WithActor(r.Context(), actor)))
	if err == nil && r.Method != http.MethodGet {
		// The key store's audit log has the change; the server's log gets
		// a line too, for those who collect logs rather than query files.
		auth.log.Info("audit: key changed over HTTP", "audit", true, "actor", actor, "method", r.Method,
			"path", r.URL.Path, "status", status, "request_id", requestIDOf(w))
	}
	return status, body, err
}

// adminKey returns the key of "Authorization: Bearer <key>", else of
// X-API-Key, or "".
func adminKey(r *http.Request) string {
	if h := strings.TrimSpace(r.Header.Get("Authorization")); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(token)
	}
	return apiKeyHeader(r)
}

// requireJSONBody returns errUnsupportedMedia for a POST, PATCH or PUT
// whose body is not declared application/json. A request without a body
// needs no type.
func requireJSONBody(r *http.Request) error {
	if (r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodPut) || r.ContentLength == 0 {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return fmt.Errorf("%w %q: send application/json", errUnsupportedMedia, ct)
}

// setAdminHeaders sets the headers of every console and admin API answer.
func setAdminHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// adminError is the admin API's error body: {"error": message}, and for 403
// and 429 the reason in "message", as /api/submit answers. A 403's reason
// is given without the "forbidden: " its error starts with.
func adminError(status int, msg string, err error) any {
	body := map[string]string{"error": msg}
	switch status {
	case http.StatusForbidden:
		body["message"] = strings.TrimPrefix(err.Error(), errForbidden.Error()+": ")
	case http.StatusTooManyRequests:
		body["message"] = err.Error()
	}
	return body
}
