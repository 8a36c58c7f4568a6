//go:build !linux

package spool

import (
	"errors"
	"os"
)

// mapSegment is not used outside Linux: appends go through pwrite.
func mapSegment(f *os.File, size int64) ([]byte, error) { return nil, nil }

func unmapSegment(mem []byte) error { return nil }

// allocate is not available outside Linux: prepareSegment writes zeros.
func allocate(f *os.File, size int64) error { return errors.ErrUnsupported }
