package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
)

const (
	// headerSize is a record's header: the payload's length, its point
	// count, and the CRC-32C of both and the payload.
	headerSize = 12
	// readChunk is how much walk reads at a time.
	readChunk = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(buf, data []byte, points int) []byte {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(points))
	binary.LittleEndian.PutUint32(hdr[8:], recordCRC(hdr[:8], data))
	buf = append(buf, hdr[:]...)
	return append(buf, data...)
}

// walk reads the records of f from off to end, up to readChunk bytes at a
// time (a larger record whole) into *buf, and passes each to fn, which says
// whether it takes the record and whether it wants another. It returns the
// offset after the last record taken, and bad when it stopped at a record
// that is not whole and valid: a write torn by a crash, the zeros after the
// last record, or corruption. It reads in chunks because reading record by
// record, a pread for each header and each payload, made the forwarder a
// noticeable share of the gateway's CPU under one-point requests and
// recovery slow in proportion to the spool's size.
func walk(f *os.File, off, end int64, buf *[]byte, fn func(payload []byte, points int) (take, more bool)) (next int64, bad bool, err error) {
	want := int64(readChunk)
	for off < end {
		chunk := min(end-off, want)
		if int64(cap(*buf)) < chunk {
			*buf = make([]byte, chunk)
		}
		b := (*buf)[:chunk]
		if n, err := f.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && int64(n) == chunk) {
			return off, false, err
		}
		for len(b) >= headerSize {
			n := int64(binary.LittleEndian.Uint32(b))
			if int64(len(b)) < headerSize+n {
				break
			}
			payload := b[headerSize : headerSize+n]
			if n == 0 || recordCRC(b[:8], payload) != binary.LittleEndian.Uint32(b[8:]) {
				return off, true, nil
			}
			take, more := fn(payload, int(binary.LittleEndian.Uint32(b[4:])))
			if !take {
				return off, false, nil
			}
			off += headerSize + n
			b = b[headerSize+n:]
			if !more {
				return off, false, nil
			}
		}
		if len(b) == int(chunk) {
			// No whole record in the chunk: the next is larger than a
			// chunk, so read it whole, unless it does not fit before end.
			if len(b) < headerSize || headerSize+int64(binary.LittleEndian.Uint32(b)) > end-off {
				return off, true, nil
			}
			want = headerSize + int64(binary.LittleEndian.Uint32(b))
		}
	}
	return off, false, nil
}

func recordCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, payload)
}
