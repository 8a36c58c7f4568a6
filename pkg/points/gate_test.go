package points

import (
	"bytes"
	"fmt"
	"testing"
	"testing/synctest"
)

// TestBigParsesWait checks that a large body's parse waits while every
// slot is taken, and that a small body's never does: the gate bounds the
// memory of parses running at once without touching one-point requests.
func TestBigParsesWait(t *testing.T) {
	var big bytes.Buffer
	big.WriteString("[")
	for i := 0; big.Len() < bigBody; i++ {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"field":"v","value":%d}`, i)
	}
	big.WriteString("]")
	opts := Options{DefaultMeasurement: "m"}

	synctest.Test(t, func(t *testing.T) {
		// The gate is swapped for one made in the bubble, so that a parse
		// blocked on it counts as waiting for synctest.Wait.
		saved := bigParses
		bigParses = make(chan struct{}, cap(saved))
		defer func() { bigParses = saved }()

		for range cap(bigParses) {
			bigParses <- struct{}{}
		}
		released := false
		release := func() {
			if !released {
				released = true
				for range cap(bigParses) {
					<-bigParses
				}
			}
		}
		defer release()

		if pts, err := ParseJSON(bytes.NewReader([]byte(`[{"field":"v","value":1}]`)), opts); err != nil || len(pts) != 1 {
			t.Fatalf("small body with every slot taken: %d points, %v", len(pts), err)
		}

		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			pts, err := ParseJSON(bytes.NewReader(big.Bytes()), opts)
			done <- result{len(pts), err}
		}()
		// Once the parse waits, or has finished, everything in the bubble
		// waits but this goroutine.
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("a %d-byte body was parsed while every slot was taken (%d points, %v)", big.Len(), r.n, r.err)
		default:
		}
		release()
		r := <-done
		if r.err != nil || r.n < 2000 {
			t.Fatalf("after the slots were freed: %d points, %v", r.n, r.err)
		}
	})
}
