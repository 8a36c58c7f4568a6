// Command bare is the yardstick for scripts/bench.sh: a bare net/http
// handler that reads the request body and answers 204, measured in the same
// run as the apiserver so the ratio between them means something on a noisy
// machine.
//
// At /submit-shaped it answers as /api/submit does, and does nothing else:
// 200, Content-Type application/json, an X-Request-Id and {"accepted":1}.
// The gap between the two paths is what the answer alone costs, before any
// of the gateway's work.
package main

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"os"
	"sync/atomic"
)

func main() {
	addr := "127.0.0.1:5099"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	var ids atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/submit-shaped", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		var id [16]byte // 32 hex digits, as the gateway's ids
		binary.BigEndian.PutUint64(id[8:], ids.Add(1))
		h.Set("X-Request-Id", hex.EncodeToString(id[:]))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"accepted":1}`+"\n")
	})
	log.Fatal(http.ListenAndServe(addr, mux))
}
