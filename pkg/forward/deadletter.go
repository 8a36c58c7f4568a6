package forward

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// DeadLetter is one line InfluxDB refused for good, as the dead-letter
// file keeps it: one JSON object per line.
type DeadLetter struct {
	Time time.Time `json:"time"`
	// KeyID is the key that wrote the line, 0 when the spool did not
	// record it (a spool written before keys were recorded).
	KeyID  int64  `json:"key_id"`
	Reason string `json:"reason"`
	Line   string `json:"line"`
}

// deadLetterFile appends dead letters to a file in batches, each with one
// write and one fsync, and rotates it once it would pass max bytes: the
// full file becomes path.1 (replacing the one before), so the two together
// hold at most about twice max.
type deadLetterFile struct {
	path string
	max  int64

	mu   sync.Mutex
	size int64 // -1 until read from the file
}

func newDeadLetterFile(path string, max int64) *deadLetterFile {
	return &deadLetterFile{path: path, max: max, size: -1}
}

// write appends letters and syncs the file once. It returns an error when
// the file cannot be written or synced; the letters must then stay where
// they were.
func (d *deadLetterFile) write(letters []DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	var buf []byte
	for _, l := range letters {
		rec, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, rec...), '\n')
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.size < 0 {
		fi, err := os.Stat(d.path)
		switch {
		case err == nil:
			d.size = fi.Size()
		case errors.Is(err, fs.ErrNotExist):
			d.size = 0
		default:
			return err
		}
	}
	if d.max > 0 && d.size > 0 && d.size+int64(len(buf)) > d.max {
		if err := os.Rename(d.path, d.path+".1"); err != nil {
			return fmt.Errorf("rotating the dead-letter file: %w", err)
		}
		d.size = 0
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.size = -1 // what reached the file is unknown
		return err
	}
	d.size += int64(len(buf))
	return nil
}
