package spool

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestUpdateSmall checks the header's byte-at-a-time CRC against
// hash/crc32's, chained as recordCRC chains them: a spool written by an
// earlier version must still read as valid.
func TestUpdateSmall(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		seed := r.Uint32()
		if got, want := updateSmall(seed, p), crc32.Update(seed, castagnoli, p); got != want {
			t.Fatalf("%d bytes from %#x: %#x, want %#x", n, seed, got, want)
		}
		hdr, ext := p[:min(n, 8)], p[min(n, 8):min(n, 20)]
		want := crc32.Update(crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, ext), castagnoli, p)
		if got := recordCRC(hdr, ext, p); got != want {
			t.Fatalf("recordCRC over %d bytes: %#x, want %#x", n, got, want)
		}
	}
}
