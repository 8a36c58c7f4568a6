package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRouterAsServeMux sends the same requests through a router and
// through a plain ServeMux with the same routes, and checks that each gets
// the same answer from the same handler, which sees the same Pattern: the
// exact look-up changes how a write endpoint is found, never what is
// found, for paths the ServeMux would clean, redirect, unescape or refuse.
func TestRouterAsServeMux(t *testing.T) {
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s, pattern %q", name, r.Pattern)
		})
	}
	rt, mux := newRouter(), http.NewServeMux()
	for _, p := range []string{"POST /api/submit", "POST /api/v2/write", "POST /write"} {
		rt.handleExact(p, handler(p))
		mux.Handle(p, handler(p))
	}
	for _, p := range []string{"GET /ping", "GET /readyz", "POST /api/v2/{rest...}"} {
		rt.Handle(p, handler(p))
		mux.Handle(p, handler(p))
	}
	exact := 0
	for _, tt := range []struct{ method, target string }{
		{"POST", "/api/v2/write"}, {"POST", "/api/v2/write?bucket=b&org=o"}, {"POST", "/write"}, {"POST", "/api/submit"},
		{"GET", "/api/v2/write"}, {"PUT", "/write"}, {"HEAD", "/api/submit"}, {"OPTIONS", "/write"},
		{"POST", "/api/v2//write"}, {"POST", "/api/v2/./write"}, {"POST", "/api/x/../v2/write"}, {"POST", "/api/v2/%77rite"},
		{"POST", "/api/v2/write/"}, {"POST", "/API/v2/write"}, {"POST", "/write%2F"}, {"POST", "/api/v2/other"},
		{"GET", "/ping"}, {"POST", "/ping"}, {"POST", "/nope"}, {"POST", "http://example.com/write"},
	} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if _, ok := rt.exact[r.URL.Path]; ok && r.URL.RawPath == "" && r.Method == rt.exact[r.URL.Path].method {
			exact++
		}
		rt.ServeHTTP(got, r)
		mux.ServeHTTP(want, httptest.NewRequest(tt.method, tt.target, nil))
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Location") != want.Header().Get("Location") || got.Header().Get("Allow") != want.Header().Get("Allow") {
			t.Errorf("%s %s: router %d %q (Location %q, Allow %q); ServeMux %d %q (Location %q, Allow %q)", tt.method, tt.target,
				got.Code, got.Body, got.Header().Get("Location"), got.Header().Get("Allow"),
				want.Code, want.Body, want.Header().Get("Location"), want.Header().Get("Allow"))
		}
	}
	if exact != 5 {
		t.Errorf("%d requests took the exact look-up, want 5: the test no longer tests it", exact)
	}
}
