package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
)

// A record is a header and its payload, newline-terminated line protocol.
// The header is the payload's length, its point count and a CRC-32C, each
// a little-endian uint32; the point count's top bit says that an extension
// of extSize bytes follows, the id of the key that wrote the record, and
// its next bit that a destination follows that: one byte of length and the
// name of the bucket the record goes to. Records written before keys were
// recorded have no extension and read as key 0, and records without a
// destination go to the gateway's own bucket, so a spool left by an
// earlier version is read as it was (an earlier version cannot read a
// record with a destination: it finds it corrupt). A later field would take
// another bit of the point count. The CRC covers the header's first 8
// bytes, the extensions and the payload.
const (
	// headerSize is a record's header without the extensions.
	headerSize = 12
	// extSize is the key extension: the key id, an int64.
	extSize = 8
	// extFlag marks, in the point count, a header with the key extension.
	extFlag = 1 << 31
	// destFlag marks, in the point count, a header with a destination.
	destFlag = 1 << 30
	// MaxDestination is the longest destination a record can name, in
	// bytes.
	MaxDestination = 255
	// readChunk is how much walk reads at a time.
	readChunk = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the size of a record of data written by key (0 for none)
// for dest ("" for the gateway's own bucket).
func recordSize(data []byte, key int64, dest string) int64 {
	n := headerSize + int64(len(data))
	if key != 0 {
		n += extSize
	}
	if dest != "" {
		n += 1 + int64(len(dest))
	}
	return n
}

// appendRecord appends to buf the record of data, holding points points,
// written by key for dest; key 0 writes a header without the key
// extension, dest "" one without a destination. dest is at most
// MaxDestination bytes.
func appendRecord(buf, data []byte, points int, key int64, dest string) []byte {
	var hdr headerBuf
	buf = append(buf, recordHeader(&hdr, data, points, key, dest)...)
	return append(buf, data...)
}

// headerBuf holds the longest header a record may have.
type headerBuf [headerSize + extSize + 1 + MaxDestination]byte

// recordHeader writes into hdr the header of the record of data, holding
// points points, written by key (0 for none) for dest ("" for the
// gateway's bucket), and returns it.
func recordHeader(hdr *headerBuf, data []byte, points int, key int64, dest string) []byte {
	n := headerSize
	word := uint32(points)
	if key != 0 {
		word |= extFlag
		binary.LittleEndian.PutUint64(hdr[n:], uint64(key))
		n += extSize
	}
	if dest != "" {
		word |= destFlag
		hdr[n] = byte(len(dest))
		n += 1 + copy(hdr[n+1:], dest)
	}
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], word)
	binary.LittleEndian.PutUint32(hdr[8:], recordCRC(hdr[:8], hdr[headerSize:n], data))
	return hdr[:n]
}

// record is one record as walk hands it out.
type record struct {
	payload []byte
	points  int
	key     int64
	dest    []byte // the destination, within the read buffer; empty for the gateway's bucket
	size    int64  // header, extensions and payload
}

// parseRecord reads the record at the start of b. It returns ok false when
// b does not hold a whole record, and bad when it holds one that is not
// valid (torn, zeros, corrupt); need is then the bytes the record claims.
func parseRecord(b []byte) (r record, need int64, ok, bad bool) {
	if len(b) < headerSize {
		return r, headerSize, false, false
	}
	n := int64(binary.LittleEndian.Uint32(b))
	word := binary.LittleEndian.Uint32(b[4:])
	hdr := int64(headerSize)
	if word&extFlag != 0 {
		hdr += extSize
	}
	destAt := hdr
	if word&destFlag != 0 {
		if int64(len(b)) <= destAt {
			return r, destAt + 1, false, false
		}
		hdr += 1 + int64(b[destAt])
	}
	need = hdr + n
	if int64(len(b)) < need {
		return r, need, false, false
	}
	payload := b[hdr:need]
	if n == 0 || recordCRC(b[:8], b[headerSize:hdr], payload) != binary.LittleEndian.Uint32(b[8:]) {
		return r, need, false, true
	}
	r = record{payload: payload, points: int(word &^ (extFlag | destFlag)), size: need}
	if word&extFlag != 0 {
		r.key = int64(binary.LittleEndian.Uint64(b[headerSize:]))
	}
	if word&destFlag != 0 {
		r.dest = b[destAt+1 : hdr]
	}
	return r, need, true, false
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
func walk(f *os.File, off, end int64, buf *[]byte, fn func(r record) (take, more bool)) (next int64, bad bool, err error) {
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
		var need int64
		for {
			r, n, ok, bad := parseRecord(b)
			if bad {
				return off, true, nil
			}
			if !ok {
				need = n
				break
			}
			take, more := fn(r)
			if !take {
				return off, false, nil
			}
			off += r.size
			b = b[r.size:]
			if !more {
				return off, false, nil
			}
		}
		if len(b) == int(chunk) {
			// No whole record in the chunk: the next is larger than a
			// chunk, so read it whole, unless it does not fit before end.
			if need > end-off || int64(len(b)) >= need {
				return off, true, nil
			}
			want = need
		}
	}
	return off, false, nil
}

func recordCRC(hdr, ext, payload []byte) uint32 {
	return crc32.Update(updateSmall(updateSmall(0, hdr), ext), castagnoli, payload)
}

// updateSmall is crc32.Update with the Castagnoli table, a byte at a time,
// for a header's few bytes. A slice given to crc32.Update escapes to the
// heap, which made every append allocate the header it wrote.
func updateSmall(crc uint32, p []byte) uint32 {
	crc = ^crc
	for _, b := range p {
		crc = castagnoli[byte(crc)^b] ^ crc>>8
	}
	return ^crc
}
