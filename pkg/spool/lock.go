package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked means another Spool, in this process or another, holds the
// directory: two writers would interleave segments and delete each
// other's records. The error Open returns wraps it with the directory and
// the holder's process id.
var ErrLocked = errors.New("spool directory locked")

// errHeld is tryLock's answer when another open file holds the lock.
var errHeld = errors.New("lock held")

// lockFile is the file in the spool's directory that the holder locks and
// writes its process id into.
const lockFile = "LOCK"

// dirLock is a held lock on a spool directory. The operating system drops
// it when the file is closed or the process ends, however it ends, so a
// lock left by a process that died is no lock at all.
type dirLock struct {
	file *os.File
}

// lockDir locks dir for the calling Spool, or returns an error wrapping
// ErrLocked that names dir and the holder's process id.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if !errors.Is(err, errHeld) {
			return nil, fmt.Errorf("spool: lock %s: %w", path, err)
		}
		if pid, ok := lockHolder(path); ok {
			return nil, fmt.Errorf("%w: %s is held by process %d", ErrLocked, dir, pid)
		}
		return nil, fmt.Errorf("%w: %s is held by another process", ErrLocked, dir)
	}
	// Written over the old id in place rather than through a new file,
	// which would be a new, unlocked inode.
	id := strconv.Itoa(os.Getpid()) + "\n"
	if _, err := f.WriteAt([]byte(id), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := f.Truncate(int64(len(id))); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &dirLock{file: f}, nil
}

// release unlocks the directory.
func (l *dirLock) release() {
	l.file.Close()
}

// lockHolder reads the process id the holder of the lock file wrote. It
// reports false while the holder has not written it yet.
func lockHolder(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(first)
	return pid, err == nil && pid > 0
}
