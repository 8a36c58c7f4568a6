package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// maxRequestIDLen is the longest X-Request-Id taken from a client.
const maxRequestIDLen = 64

type requestIDKey struct{}

// requestID gives every request an id: the client's X-Request-Id when it is
// sane (1 to 64 of A-Z a-z 0-9 . _ -), so a request can be followed through
// proxies, or 16 random bytes in hex. The id is echoed in the X-Request-Id
// response header and is in the request's log line.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// requestIDFrom returns the request's id, or "" outside requestID.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
	return hex.EncodeToString(b[:])
}
