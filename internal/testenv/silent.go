package testenv

import (
	"io"
	"net"
	"testing"
)

// SilentServer returns the address of a server that accepts connections
// and never says a word, as a database behind a broken network might: for
// tests of a client's timeouts. It stops when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
