//go:build !linux

package spool

import "os"

// mapSegment is not used outside Linux: appends go through pwrite.
func mapSegment(f *os.File, size int64) ([]byte, error) { return nil, nil }

func unmapSegment(mem []byte) error { return nil }
