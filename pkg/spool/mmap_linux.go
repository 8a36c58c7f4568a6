package spool

import (
	"os"
	"syscall"
)

// mapSegment maps a prepared segment for writing. Copying a record into the
// mapping puts it in the operating system's page cache without a system
// call, which is all --fsync interval promises before an fdatasync; the
// pwrite per request it replaces was the largest cost in the handler's
// profile.
func mapSegment(f *os.File, size int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func unmapSegment(mem []byte) error { return syscall.Munmap(mem) }
