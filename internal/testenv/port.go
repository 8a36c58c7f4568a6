package testenv

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a loopback port that could be bound just now, chosen at
// random below the kernel's range of ephemeral ports: a port the kernel
// hands out for ":0" can become the local end of an outgoing connection
// between the caller closing it and a server binding it, and the server
// then fails with "address already in use". A port below the range can
// still be taken meanwhile by another test's server, which is why the
// servers here start again on another port when that happens.
func FreePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11024 {
				low = n
			}
		}
	}
	for range 100 {
		p := 10000 + rand.IntN(low-11000)
		if ln, err := net.Listen("tcp", loopback(p)); err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port below the ephemeral range after 100 tries")
}

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on: for a server the test starts, or an InfluxDB that is down.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return loopback(p)
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
