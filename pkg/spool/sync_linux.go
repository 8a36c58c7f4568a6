package spool

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data, and only the metadata needed to read it back:
// on a preallocated segment that is no metadata at all.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
