package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// putKey is PUT /admin/api/keys/by-name/{name}: an idempotent
// create-or-update of the key of that name, with the semantics of one
// entry of keyctl apply's file. The body declares the key whole (its
// hostname and policy; what it leaves out is the default), and the answer
// says what was done: 201 with the key and its value for a key made
// (create, or replace when the hostname changed), 200 with the key for
// update or unchanged. Keys it makes are marked as the admin API's, which
// keyctl apply --prune never revokes. An admin key must stay within the
// limits; a store changed under the request is 409, to be retried.
func putKey(keys KeyAdmin, limits keystore.AdminLimits, grants *sync.Mutex, now func() time.Time) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		if err := keystore.CheckName(name, "the name in the path"); err != nil {
			return 0, nil, err
		}
		nk, err := readEntry(w, r, name, now())
		if err != nil {
			return 0, nil, err
		}
		// Held across the plan, the limits' check and the apply, as the
		// other handlers that may widen a key hold it; Apply also refuses
		// a plan another writer made stale.
		grants.Lock()
		defer grants.Unlock()
		p, err := keys.Plan(r.Context(), []keystore.NewKey{nk}, keystore.PlanOptions{ManagedBy: keystore.ManagedByHTTP})
		if err != nil {
			return 0, nil, err
		}
		t := now()
		if err := limits.CheckChange(p.Changes[0], t); err != nil {
			return 0, nil, err
		}
		applied, err := keys.Apply(r.Context(), p)
		if err != nil {
			return 0, nil, err
		}
		c := applied.Changes[0]
		answer := keyjson.Put{Action: string(c.Kind), Key: keyjson.New(c.Result, t)}
		switch c.Kind {
		case keystore.PlanCreate, keystore.PlanReplace:
			answer.Value = c.Value
			if c.Kind == keystore.PlanReplace {
				answer.Replaces = &c.Key.ID
			}
			w.Header().Set("Location", fmt.Sprintf("/admin/api/keys/%d", c.Result.ID))
			return http.StatusCreated, answer, nil
		}
		return http.StatusOK, answer, nil
	}
}

// readEntry reads the body of a PUT by name, a JSON object that is one
// entry of a key file, and returns the key it defines for name. The body
// may name the key too, but only by the path's name.
func readEntry(w http.ResponseWriter, r *http.Request, name string, now time.Time) (keystore.NewKey, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		return keystore.NewKey{}, err
	}
	var syntax *json.SyntaxError
	if err := json.Unmarshal(body, new(json.RawMessage)); errors.As(err, &syntax) {
		return keystore.NewKey{}, fmt.Errorf("%w: the body is not JSON: %v at byte %d", errInvalidRequest, syntax, syntax.Offset)
	} else if err != nil {
		return keystore.NewKey{}, fmt.Errorf("%w: the body is empty; send a JSON object", errInvalidRequest)
	}
	e, err := keyfile.ParseEntry(body)
	if err != nil {
		return keystore.NewKey{}, err
	}
	if e.Name != "" && e.Name != name {
		return keystore.NewKey{}, fmt.Errorf("%w: \"name\" %q in the body is not %q, the path's", errInvalidRequest, e.Name, name)
	}
	if e.Hash != "" || e.Prefix != "" {
		return keystore.NewKey{}, fmt.Errorf("%w: \"hash\" and \"prefix\" are for keyctl import: this makes keys of its own", errInvalidRequest)
	}
	e.Name = name
	return e.Definition(now)
}
