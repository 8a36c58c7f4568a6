package server

import (
	"net/http"
	"strings"
)

// router is the ingest listener's ServeMux with a look-up of its own for
// the write endpoints: a request to one of them by its exact path, with
// nothing escaped, goes straight to the handler the ServeMux would give
// it, with the same Pattern. The ServeMux cleans and unescapes every path
// and walks its tree, which took 2 to 3% of a one-point request's CPU;
// anything else, a path it would clean or redirect above all, still goes
// through it.
type router struct {
	*http.ServeMux
	exact map[string]exactRoute // by path
}

// exactRoute is a route of the exact look-up: the one method it takes.
type exactRoute struct {
	method, pattern string
	h               http.Handler
}

func newRouter() *router {
	return &router{ServeMux: http.NewServeMux(), exact: map[string]exactRoute{}}
}

// handleExact registers h for pattern, "METHOD /path" without wildcards,
// with the ServeMux and in the exact look-up.
func (rt *router) handleExact(pattern string, h http.Handler) {
	rt.Handle(pattern, h)
	method, path, _ := strings.Cut(pattern, " ")
	rt.exact[path] = exactRoute{method: method, pattern: pattern, h: h}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e, ok := rt.exact[r.URL.Path]; ok && r.Method == e.method && r.URL.RawPath == "" {
		r.Pattern = e.pattern
		e.h.ServeHTTP(w, r)
		return
	}
	rt.ServeMux.ServeHTTP(w, r)
}
