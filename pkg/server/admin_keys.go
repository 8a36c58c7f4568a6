package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// The admin API's key handlers. Each is built by a function that takes the
// key store and the clock and returns an adminFunc, which adminGuard wraps.

// defaultAuditLimit is how many audit entries a key's audit answer holds
// unless ?limit= says otherwise, as in keyctl audit.
const defaultAuditLimit = 50

// defaultGrace is how long a rotated key keeps working unless the request
// says otherwise, as in keyctl rotate.
const defaultGrace = 24 * time.Hour

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
	Name         *string   `json:"name"`         // unique; "" removes it (PATCH)
	Bucket       *string   `json:"bucket"`       // "" means the gateway's own
	MaxSeries    *int      `json:"max_series"`   // 0 means the server's default
}

// policy returns the request's policy as keystore.ParsePolicy takes it,
// which names each input as the JSON body does.
func (req keyRequest) policy() keystore.PolicyInput {
	in := keystore.PolicyInput{ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt, NoExpiry: req.NoExpiry, Scopes: req.Scopes,
		Measurements: req.Measurements, Rate: req.Rate, Burst: req.Burst, Description: req.Description, KeyName: req.Name,
		Bucket: req.Bucket, MaxSeries: req.MaxSeries, Name: jsonField}
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
// the key and, this once, its value. A key with the admin scope must be
// within limits.
func createKey(keys KeyAdmin, limits keystore.AdminLimits, now func() time.Time) adminFunc {
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
		nk := policy.NewKey(*req.Hostname)
		if err := limits.CheckNew(nk, t); err != nil {
			return 0, nil, err
		}
		k, plain, err := keys.Generate(r.Context(), nk)
		if err != nil {
			return 0, nil, err
		}
		w.Header().Set("Location", fmt.Sprintf("/admin/api/keys/%d", k.ID))
		return http.StatusCreated, keyjson.Generated{Key: keyjson.New(k, t), Value: plain}, nil
	}
}

// showKey is GET /admin/api/keys/{id}.
func showKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return keyAction(keys.Get, now)
}

// updateKey is PATCH /admin/api/keys/{id}: it changes what the body names
// and answers with the key. A change that gives the key the admin scope,
// or more time with it, must leave it within limits; checking and
// changing hold grants, so two requests cannot each pass the check on a
// key the other is changing.
func updateKey(keys KeyAdmin, limits keystore.AdminLimits, grants *sync.Mutex, now func() time.Time) adminFunc {
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
		unlock, err := checkedKey(r.Context(), keys, grants, id, func(old keystore.Key) error { return limits.CheckUpdate(old, u, t) })
		if err != nil {
			return 0, nil, err
		}
		defer unlock()
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
	return keyAction(keys.Revoke, now)
}

// releaseKey is POST /admin/api/keys/{id}/release: it lifts the key's
// quarantine, so its writes are taken again, and answers with the key. A
// key that is not quarantined is answered as it is.
func releaseKey(keys KeyAdmin, now func() time.Time) adminFunc {
	return keyAction(func(ctx context.Context, id int64) (keystore.Key, error) {
		k, _, err := keys.Release(ctx, id)
		return k, err
	}, now)
}

// keyAction is a handler that applies act to the key of the path's {id}
// and answers with the key act returns.
func keyAction(act func(ctx context.Context, id int64) (keystore.Key, error), now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id, err := keyID(r)
		if err != nil {
			return 0, nil, err
		}
		k, err := act(r.Context(), id)
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
// An admin key beyond limits is not rotated: its new key would be too.
func rotateKey(keys KeyAdmin, limits keystore.AdminLimits, grants *sync.Mutex, now func() time.Time) adminFunc {
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
			if err := keystore.CheckGrace(grace, `"grace"`); err != nil {
				return 0, nil, err
			}
		}
		unlock, err := checkedKey(r.Context(), keys, grants, id, func(k keystore.Key) error { return limits.CheckRotate(k, now()) })
		if err != nil {
			return 0, nil, err
		}
		defer unlock()
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

// checkedKey takes grants and returns what gives it back once check passed
// on key id as stored, so that no other request changes the key between
// the check and the change the caller then makes. On an error grants is
// given back at once.
func checkedKey(ctx context.Context, keys KeyAdmin, grants *sync.Mutex, id int64, check func(keystore.Key) error) (unlock func(), err error) {
	grants.Lock()
	k, err := keys.Get(ctx, id)
	if err == nil {
		err = check(k)
	}
	if err != nil {
		grants.Unlock()
		return nil, err
	}
	return grants.Unlock, nil
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
