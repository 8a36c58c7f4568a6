//go:build !linux

package spool

import "os"

// tryLock does not lock outside Linux, where the spool is only built for
// development: the directory is not protected from a second writer there.
func tryLock(f *os.File) error { return nil }
