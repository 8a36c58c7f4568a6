package server

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/metricgate/metricgate/pkg/deadletter"
)

// defaultDeadLetterLimit is how many dead letters a list answer holds
// unless ?limit= says otherwise.
const defaultDeadLetterLimit = 100

// deadLetterList is the answer of GET /admin/api/dead-letters.
type deadLetterList struct {
	// Total is the number of letters that match, of which Letters are the
	// newest, newest first.
	Total   int                 `json:"total"`
	Letters []deadletter.Letter `json:"letters"`
}

// listDeadLetters is GET /admin/api/dead-letters: the points InfluxDB
// refused for good, of ?key_id= if given, newest first, at most ?limit=
// of them (100 by default, 0 for all).
func listDeadLetters(letters DeadLetters) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		q := r.URL.Query()
		sel, err := keySelector(q.Get("key_id"))
		if err != nil {
			return 0, nil, err
		}
		limit := defaultDeadLetterLimit
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
				return 0, nil, fmt.Errorf("%w: limit %q: want a number of letters, 0 for all", errInvalidParam, s)
			}
		}
		all, err := letters.Read(r.Context())
		if err != nil {
			return 0, nil, err
		}
		out := deadLetterList{Letters: []deadletter.Letter{}}
		for _, l := range slices.Backward(all) {
			if sel != nil && !sel(l) {
				continue
			}
			out.Total++
			if limit == 0 || len(out.Letters) < limit {
				out.Letters = append(out.Letters, l)
			}
		}
		return http.StatusOK, out, nil
	}
}

// replayRequest is the body of POST /admin/api/dead-letters/replay, which
// may be empty.
type replayRequest struct {
	KeyID *int64 `json:"key_id"` // only this key's letters; all when absent
}

// replayDeadLetters is POST /admin/api/dead-letters/replay: it sends the
// dead letters (of "key_id" if given) to InfluxDB again, and answers with
// how many were delivered and taken out of the file, refused again and
// kept with the new reason, or not sent because InfluxDB could not take
// them now, with why.
func replayDeadLetters(letters DeadLetters) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var req replayRequest
		if r.ContentLength != 0 {
			if err := readJSON(w, r, maxAdminBody, &req); err != nil {
				return 0, nil, err
			}
		}
		var sel func(deadletter.Letter) bool
		if req.KeyID != nil {
			id := *req.KeyID
			sel = func(l deadletter.Letter) bool { return l.KeyID == id }
		}
		report, err := letters.Replay(r.Context(), sel)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, report, nil
	}
}

// keySelector returns what keeps the letters of the key id s names, nil
// for "" (every letter), or errInvalidParam.
func keySelector(s string) (func(deadletter.Letter) bool, error) {
	if s == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return nil, fmt.Errorf("%w: key_id %q: want a key id", errInvalidParam, s)
	}
	return func(l deadletter.Letter) bool { return l.KeyID == id }, nil
}
