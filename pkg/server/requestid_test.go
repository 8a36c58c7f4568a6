package server

import (
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"testing"
)

// TestNewRequestID checks the generated ids: 32 hex digits, the process's
// 16 first, then the sequence, so that two are never alike.
func TestNewRequestID(t *testing.T) {
	a, b := newRequestID(), newRequestID()
	hexDigits := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if !hexDigits.MatchString(a) || !hexDigits.MatchString(b) || a == b || a[:16] != b[:16] || a[:16] != requestIDHex {
		t.Errorf("ids %q and %q: want 32 hex digits each, the same first 16 (%s), then apart", a, b, requestIDHex)
	}
	sa, _ := hex.DecodeString(a[16:])
	sb, _ := hex.DecodeString(b[16:])
	if len(sa) != 8 || len(sb) != 8 || binary.BigEndian.Uint64(sb) <= binary.BigEndian.Uint64(sa) {
		t.Errorf("ids %q and %q: want the second's sequence number after the first's", a, b)
	}
}
