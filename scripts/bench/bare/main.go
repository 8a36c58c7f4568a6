// Command bare is the yardstick for scripts/bench.sh: a bare net/http
// handler that reads the request body and answers 204, measured in the same
// run as the apiserver so the ratio between them means something on a noisy
// machine.
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:5099"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})))
}
