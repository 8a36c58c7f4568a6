//go:build !linux

package spool

import "os"

// tryLock does not lock outside Linux: the lock, like the AIO sync and the
// mapped segments, is Linux-only, and elsewhere the directory is not
// protected from a second writer.
func tryLock(f *os.File) error { return nil }
