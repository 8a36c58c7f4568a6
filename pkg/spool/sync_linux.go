package spool

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
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

// asyncSyncer is the committer's fdatasync, run through Linux native AIO
// (IOCB_CMD_FDSYNC) with its completion signalled on an eventfd that the
// Go netpoller waits on, as it waits on a socket.
//
// A plain fdatasync holds its thread and the thread's Go scheduler P for
// the whole disk flush. Under load the runtime's monitor then wakes every
// 20 us, takes the P away and starts another thread, and when the call
// returns its thread finds the P gone and parks: in --fsync always the
// monitor and its sleeps showed in the profile as a large share of the
// gateway's CPU, for one sync per group. Through AIO the flush runs on a
// kernel worker and no thread blocks: the monitor's share fell and
// requests/s rose in an A/B run. It is not safe for concurrent use: only
// the committer calls it.
type asyncSyncer struct {
	ctx uintptr  // aio_context_t
	efd *os.File // eventfd, non-blocking, read through the netpoller
}

// iocb is the kernel's struct iocb, little-endian layout; the fields an
// fdatasync leaves zero are blank.
type iocb struct {
	_      uint64 // aio_data
	_      uint32 // aio_key
	_      uint32 // aio_rw_flags
	opcode uint16 // aio_lio_opcode
	_      int16  // aio_reqprio
	fd     uint32 // aio_fildes
	_      uint64 // aio_buf
	_      uint64 // aio_nbytes
	_      int64  // aio_offset
	_      uint64 // aio_reserved2
	flags  uint32 // aio_flags
	resfd  uint32 // aio_resfd
}

// ioEvent is the kernel's struct io_event.
type ioEvent struct {
	_   uint64 // data
	_   uint64 // obj
	res int64
	_   int64 // res2
}

const (
	iocbCmdFdsync = 3      // IOCB_CMD_FDSYNC
	iocbFlagResfd = 1 << 0 // IOCB_FLAG_RESFD
)

// errNoAsync means the kernel or file system cannot run fdatasync through
// AIO; the caller falls back to the blocking call.
var errNoAsync = errors.New("spool: asynchronous fdatasync unsupported")

func newAsyncSyncer() (*asyncSyncer, error) {
	var ctx uintptr
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, e
	}
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Syscall(syscall.SYS_IO_DESTROY, ctx, 0, 0)
		return nil, e
	}
	// A non-blocking descriptor makes os.NewFile register it with the
	// netpoller, so Read parks the goroutine instead of the thread.
	return &asyncSyncer{ctx: ctx, efd: os.NewFile(fd, "spool-aio-eventfd")}, nil
}

// fdatasync flushes f's data as fdatasync(2) does. It returns errNoAsync,
// having done nothing, where AIO cannot sync f.
func (a *asyncSyncer) fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cb := &iocb{opcode: iocbCmdFdsync, fd: uint32(fd), flags: iocbFlagResfd, resfd: uint32(a.efd.Fd())}
		for {
			_, _, e := syscall.Syscall(syscall.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&cb)))
			switch e {
			case 0:
				return
			case syscall.EINTR, syscall.EAGAIN:
				continue
			case syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP:
				serr = errNoAsync
			default:
				serr = e
			}
			return
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	var count [8]byte
	if _, err := a.efd.Read(count[:]); err != nil {
		return err
	}
	var ev ioEvent
	var now syscall.Timespec // do not wait: the eventfd said it is done
	for {
		n, _, e := syscall.Syscall6(syscall.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&ev)), uintptr(unsafe.Pointer(&now)), 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		if n != 1 {
			return errors.New("spool: fdatasync completed without an event")
		}
		break
	}
	if ev.res < 0 {
		return syscall.Errno(-ev.res)
	}
	return nil
}

func (a *asyncSyncer) close() {
	syscall.Syscall(syscall.SYS_IO_DESTROY, a.ctx, 0, 0)
	a.efd.Close()
}
