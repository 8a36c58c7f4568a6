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

// UnusableDatabase is the address of a PostgreSQL a client cannot use, with
// the password it carries, which the client must never show, and what the
// key store says of it (keystore's one-line error) when it gives up after
// the timeout passed to UnusablePostgreSQL.
type UnusableDatabase struct {
	Name     string
	URL      string
	Password string
	Want     string
}

// UnusablePostgreSQL returns a server that never answers, a port nothing
// listens on, and an address that does not parse, for tests of how the
// binaries report them.
func UnusablePostgreSQL(t testing.TB, timeout string) []UnusableDatabase {
	t.Helper()
	silent, refused := SilentServer(t), FreeAddr(t)
	const password = "hunter2-pw"
	return []UnusableDatabase{
		{"NoAnswer", "postgres://app:" + password + "@" + silent + "/keys", password,
			"keystore: cannot connect to PostgreSQL at " + silent + ": no answer within " + timeout},
		{"Refused", "postgresql://app:" + password + "@" + refused + "/keys", password,
			"keystore: cannot connect to PostgreSQL at " + refused + ": connect: connection refused"},
		{"BadAddress", "postgres://app:" + password + "@db.example:port/keys", password,
			"keystore: cannot use the PostgreSQL address postgres://app:xxxxx@db.example:port/keys: invalid port"},
	}
}
