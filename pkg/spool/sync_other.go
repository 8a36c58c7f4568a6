//go:build !linux

package spool

import (
	"errors"
	"os"
)

func fdatasync(f *os.File) error { return f.Sync() }

// asyncSyncer exists on Linux only; elsewhere the committer blocks in
// fdatasync.
type asyncSyncer struct{}

var errNoAsync = errors.ErrUnsupported

func newAsyncSyncer() (*asyncSyncer, error) { return nil, errNoAsync }

func (a *asyncSyncer) fdatasync(f *os.File) error { return errNoAsync }

func (a *asyncSyncer) close() {}
