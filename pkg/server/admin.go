package server

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/metricgate/metricgate/pkg/keyjson"
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

// defaultAuditLimit is how many audit entries a key's audit answer holds
// unless ?limit= says otherwise, as in keyctl audit.
const defaultAuditLimit = 50

// defaultGrace is how long a rotated key keeps working unless the request
// says otherwise, as in keyctl rotate.
const defaultGrace = 24 * time.Hour

//go:embed console
var consoleFiles embed.FS

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
				writeErrorAs(w, r, err, adminError)
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
	usage.Record(k.ID, addr.String(), now(), 0)
	if err := requireJSONBody(r); err != nil {
		return 0, nil, err
	}
	actor := fmt.Sprintf("admin-api:key %d from %s", k.ID, addr)
	status, body, err := f(w, r.WithContext(keystore.WithActor(r.Context(), actor)))
	if err == nil && r.Method != http.MethodGet {
		// The key store's audit log has the change; the server's log gets
		// a line too, for those who collect logs rather than query files.
		auth.log.Info("audit: key changed over HTTP", "audit", true, "actor", actor, "method", r.Method,
			"path", r.URL.Path, "status", status, "request_id", requestIDFrom(r.Context()))
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
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// requireJSONBody returns errUnsupportedMedia for a POST or PATCH whose body
// is not declared application/json. A request without a body needs no type.
func requireJSONBody(r *http.Request) error {
	if (r.Method != http.MethodPost && r.Method != http.MethodPatch) || r.ContentLength == 0 {
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

// handleConsole serves the web console's files at /admin/.
func handleConsole() http.Handler {
	files, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fileServer := http.StripPrefix("/admin/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setAdminHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// listKeys is GET /admin/api/keys: the keys with ?status= (active, the
// default, revoked, expired or all), bound to ?hostname= if given, in id
// order.
func listKeys(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		q := r.URL.Query()
		status := q.Get("status")
		switch status {
		case "":
			status = string(keystore.StatusActive)
		case string(keystore.StatusActive), string(keystore.StatusRevoked), string(keystore.StatusExpired), "all":
		default:
			return 0, nil, fmt.Errorf("%w: status %q: want active, revoked, expired or all", errInvalidParam, status)
		}
		all, err := keys.List(r.Context(), keystore.Filter{Hostname: strings.TrimSpace(q.Get("hostname")), All: true})
		if err != nil {
			return 0, nil, err
		}
		t := now()
		list := []keystore.Key{}
		for _, k := range all {
			if status == "all" || string(k.Status(t)) == status {
				list = append(list, k)
			}
		}
		return http.StatusOK, keyjson.List(list, t), nil
	}
}

// keyRequest is the body of POST /admin/api/keys, which must name the
// hostname, and of PATCH /admin/api/keys/{id}, which must not: a key's
// host and policy. Fields left out (or null) are not given.
type keyRequest struct {
	Hostname     *string   `json:"hostname"`
	Description  *string   `json:"description"`
	ExpiresAt    *string   `json:"expires_at"` // RFC 3339
	ExpiresIn    *string   `json:"expires_in"` // a duration such as 720h
	NoExpiry     bool      `json:"no_expiry"`
	Scopes       *[]string `json:"scopes"`
	Measurements *[]string `json:"measurements"` // [] allows every measurement
	Rate         *float64  `json:"rate"`         // 0 means the server's default
	Burst        *int      `json:"burst"`        // 0 means the server's default
}

// policy returns the request's policy as keystore.ParsePolicy takes it,
// which names each input as the JSON body does.
func (req keyRequest) policy() keystore.PolicyInput {
	in := keystore.PolicyInput{ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt, NoExpiry: req.NoExpiry, Scopes: req.Scopes,
		Measurements: req.Measurements, Rate: req.Rate, Burst: req.Burst, Description: req.Description, Name: jsonField}
	if req.Measurements != nil && len(*req.Measurements) == 0 {
		in.Measurements, in.AllMeasurements = nil, true
	}
	return in
}

// jsonField names a policy input as the admin API's JSON does. The API has
// no all_measurements: "measurements": [] does its work.
func jsonField(f keystore.Field) string {
	if f == keystore.FieldAllMeasurements {
		return ""
	}
	return strconv.Quote(string(f))
}

// createKey is POST /admin/api/keys: it generates a key and answers 201 with
// the key and, this once, its value.
func createKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var req keyRequest
		if err := readJSON(w, r, maxAdminBody, &req); err != nil {
			return 0, nil, err
		}
		if req.Hostname == nil || strings.TrimSpace(*req.Hostname) == "" {
			return 0, nil, fmt.Errorf("%w: \"hostname\" is required", errInvalidRequest)
		}
		t := now()
		policy, err := keystore.ParsePolicy(req.policy(), t)
		if err != nil {
			return 0, nil, err
		}
		k, plain, err := keys.Generate(r.Context(), policy.NewKey(*req.Hostname))
		if err != nil {
			return 0, nil, err
		}
		w.Header().Set("Location", fmt.Sprintf("/admin/api/keys/%d", k.ID))
		return http.StatusCreated, keyjson.Generated{Key: keyjson.New(k, t), Value: plain}, nil
	}
}

// showKey is GET /admin/api/keys/{id}.
func showKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		k, err := keys.Get(r.Context(), id)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, keyjson.New(k, now()), nil
	}
}

// updateKey is PATCH /admin/api/keys/{id}: it changes what the body names
// and answers with the key.
func updateKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		var req keyRequest
		if err := readJSON(w, r, maxAdminBody, &req); err != nil {
			return 0, nil, err
		}
		if req.Hostname != nil {
			return 0, nil, fmt.Errorf("%w: \"hostname\" cannot be changed: rotate the key, or create one for another host",
				errInvalidRequest)
		}
		t := now()
		u, err := keystore.ParseUpdate(req.policy(), t)
		if err != nil {
			return 0, nil, err
		}
		k, err := keys.Update(r.Context(), id, u)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, keyjson.New(k, t), nil
	}
}

// revokeKey is DELETE /admin/api/keys/{id} and POST
// /admin/api/keys/{id}/revoke: it revokes the key, which stops working on
// the next request, and answers with it. The row is kept for audit.
func revokeKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		k, err := keys.Revoke(r.Context(), id)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, keyjson.New(k, now()), nil
	}
}

// rotateRequest is the body of POST /admin/api/keys/{id}/rotate, which may
// be empty.
type rotateRequest struct {
	Grace *string `json:"grace"` // how long the old key keeps working, such as 1h; default 24h
}

// rotateKey is POST /admin/api/keys/{id}/rotate: it makes a new key with
// the same host and policy, lets the old one work for the grace period, and
// answers 201 with the new key, its value, and the old key's id and end.
func rotateKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		var req rotateRequest
		if r.ContentLength != 0 {
			if err := readJSON(w, r, maxAdminBody, &req); err != nil {
				return 0, nil, err
			}
		}
		grace := defaultGrace
		if req.Grace != nil {
			if grace, err = time.ParseDuration(strings.TrimSpace(*req.Grace)); err != nil || grace < 0 {
				return 0, nil, fmt.Errorf("%w: \"grace\" %q must be a duration of 0 or more, such as 1h", errInvalidRequest, *req.Grace)
			}
		}
		nk, plain, old, err := keys.Rotate(r.Context(), id, grace)
		if err != nil {
			return 0, nil, notActive(err, id)
		}
		w.Header().Set("Location", fmt.Sprintf("/admin/api/keys/%d", nk.ID))
		return http.StatusCreated, keyjson.NewRotated(nk, plain, old, now()), nil
	}
}

// keyAudit is GET /admin/api/keys/{id}/audit: the key's audit log, newest
// first, at most ?limit= entries (50 by default, 0 for all).
func keyAudit(keys KeyAdmin) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		limit := defaultAuditLimit
		if s := r.URL.Query().Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
				return 0, nil, fmt.Errorf("%w: limit %q: want a number of entries, 0 for all", errInvalidParam, s)
			}
		}
		if _, err := keys.Get(r.Context(), id); err != nil {
			return 0, nil, err
		}
		entries, err := keys.Audit(r.Context(), id, limit)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, keyjson.Audit(entries), nil
	}
}

// keyID returns the {id} of r's path, or keystore.ErrNotFound when it is
// not a key id.
func keyID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a key id: %w", s, keystore.ErrNotFound)
	}
	return id, nil
}

// notActive turns the store's refusal to rotate a revoked or expired key
// into errNotActive, a 409: to statusOf, keystore.ErrRevoked and ErrExpired
// mean a failed authentication.
func notActive(err error, id int64) error {
	switch {
	case errors.Is(err, keystore.ErrRevoked):
		return fmt.Errorf("%w: key %d is revoked", errNotActive, id)
	case errors.Is(err, keystore.ErrExpired):
		return fmt.Errorf("%w: key %d has expired", errNotActive, id)
	}
	return err
}
