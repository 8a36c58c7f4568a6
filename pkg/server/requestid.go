package server

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"sync/atomic"
)

// maxRequestIDLen is the longest X-Request-Id taken from a client.
const maxRequestIDLen = 64

// requestID returns the id of r: the client's X-Request-Id when it is sane
// (1 to 64 of A-Z a-z 0-9 . _ -), so a request can be followed through
// proxies, or a new one (see newRequestID). observe echoes it in the X-Request-Id
// response header and puts it in the request's log line.
func requestID(r *http.Request) string {
	if id := headerValue(r.Header, "X-Request-Id"); saneRequestID(id) {
		return id
	}
	return newRequestID()
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

// requestIDPrefix makes ids unique across processes and restarts;
// requestIDSeq within one. Reading crypto/rand per request cost a quarter
// of a microsecond on every request's path.
var (
	requestIDPrefix = func() [8]byte {
		var b [8]byte
		rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
		return b
	}()
	requestIDSeq atomic.Uint64
)

// requestIDHex is requestIDPrefix in hex digits, written once.
var requestIDHex = hex.EncodeToString(requestIDPrefix[:])

// newRequestID returns 32 hex digits: the process's random prefix and a
// sequence number.
func newRequestID() string {
	var b [32]byte
	var seq [8]byte
	copy(b[:16], requestIDHex)
	binary.BigEndian.PutUint64(seq[:], requestIDSeq.Add(1))
	hex.Encode(b[16:], seq[:])
	return string(b[:])
}
