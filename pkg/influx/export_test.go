package influx

import (
	"context"
	"net"
	"net/http"
)

// SetDial makes w's connections to InfluxDB with dial, wrapped as the
// Writer wraps the connections it dials, so that a test can watch what
// the transport writes.
func SetDial(w *Writer, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	w.client.Transport.(*http.Transport).DialContext = bulkDialer(dial)
}
