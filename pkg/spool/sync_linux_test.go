package spool

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

func TestAsyncFdatasync(t *testing.T) {
	// The kernel reads these structs by layout.
	if n := unsafe.Sizeof(iocb{}); n != 64 {
		t.Fatalf("iocb is %d bytes, the kernel's struct iocb 64", n)
	}
	if n := unsafe.Sizeof(ioEvent{}); n != 32 {
		t.Fatalf("ioEvent is %d bytes, the kernel's struct io_event 32", n)
	}
	a, err := newAsyncSyncer()
	if err != nil {
		t.Fatalf("newAsyncSyncer: %v", err)
	}
	defer a.close()

	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Repeated syncs each consume their own completion: a leftover event
	// or eventfd count would make a later sync return before its flush.
	for i := range 50 {
		if _, err := f.WriteAt([]byte("record\n"), int64(i*7)); err != nil {
			t.Fatal(err)
		}
		if err := a.fdatasync(f); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	var ev [1]ioEvent
	var now syscall.Timespec
	n, _, e := syscall.Syscall6(syscall.SYS_IO_GETEVENTS, a.ctx, 0, 1, uintptr(unsafe.Pointer(&ev[0])), uintptr(unsafe.Pointer(&now)), 0)
	if e != 0 || n != 0 {
		t.Errorf("events left after the syncs: n=%d err=%v", n, e)
	}

	// A pipe cannot be synced through AIO: the caller is told to fall back.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := a.fdatasync(w); !errors.Is(err, errNoAsync) {
		t.Errorf("sync of a pipe: got %v, want errNoAsync", err)
	}

	closed, err := os.Create(filepath.Join(t.TempDir(), "closed"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := a.fdatasync(closed); err == nil {
		t.Error("sync of a closed file succeeded")
	}
}

// TestSyncGroupFallsBack checks that the committer drops AIO where it is
// unsupported and then syncs with the blocking call, reporting its result.
func TestSyncGroupFallsBack(t *testing.T) {
	a, err := newAsyncSyncer()
	if err != nil {
		t.Fatalf("newAsyncSyncer: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	s := &Spool{aio: a, file: w}
	err = s.syncGroup()
	if s.aio != nil {
		t.Error("the committer kept AIO after it was refused")
	}
	// fdatasync(2) on a pipe fails with EINVAL: the blocking call ran.
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("syncGroup on a pipe: got %v, want EINVAL from fdatasync", err)
	}
}
