// Package deadletter keeps the lines InfluxDB refused for good, so that
// nothing the gateway acknowledged is lost without a trace: each with the
// key that sent it, the bucket it was bound for, the reason and the time,
// one JSON object per line in a file of the spool's directory. The file
// is appended in batches, each with one write and one fsync, and rotated
// once it would pass its cap: it becomes path.1, replacing the one before,
// so the two hold at most about twice the cap.
//
// An admin inspects the letters and, once the cause is fixed, sends them
// again (forward.Replay): Settle then takes out what InfluxDB took and
// keeps, with the new reason, what it refused again. Every change to the
// files, the forwarder's appends included, holds an exclusive lock on
// path.lock, so a replay run by keyctl beside a running gateway loses no
// letter the gateway adds meanwhile. The lock is Linux's flock; elsewhere
// there is none, and a replay must not run beside a gateway.
package deadletter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Letter is one line InfluxDB refused for good, as the file keeps it.
type Letter struct {
	Time time.Time `json:"time"`
	// KeyID is the key that wrote the line, 0 when the spool did not
	// record it (a spool written before keys were recorded).
	KeyID int64 `json:"key_id"`
	// Bucket is the bucket the line was bound for: the key's own, or ""
	// for the gateway's --influx-bucket.
	Bucket string `json:"bucket,omitempty"`
	Reason string `json:"reason"`
	Line   string `json:"line"`
	// Unresolved marks a line the forwarder dead-lettered with others
	// after spending its budget of writes on the batch without finding
	// which of them InfluxDB dropped: InfluxDB may have written it, and
	// it is not counted against its key.
	Unresolved bool `json:"unresolved,omitempty"`
}

// File is a capped dead-letter file and the one rotated out before it.
// Its methods are safe for concurrent use, by this process and others.
type File struct {
	path string
	max  int64
}

// NewFile returns the dead-letter file at path, rotated once it would pass
// max bytes (0 for never). It touches nothing on disk.
func NewFile(path string, max int64) *File { return &File{path: path, max: max} }

// Path returns the file's path; the one rotated out is Path() + ".1".
func (f *File) Path() string { return f.path }

// Append adds letters to the file with one write and one fsync, rotating
// it first if they would take it past its cap. It returns an error when
// the file cannot be written or synced; the letters must then stay where
// they were.
func (f *File) Append(letters []Letter) error {
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
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	size := int64(0)
	switch fi, err := os.Stat(f.path); {
	case err == nil:
		size = fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if f.max > 0 && size > 0 && size+int64(len(buf)) > f.max {
		if err := os.Rename(f.path, f.path+".1"); err != nil {
			return fmt.Errorf("rotating the dead-letter file: %w", err)
		}
	}
	out, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = out.Write(buf)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Read returns the letters of both files, the rotated one's first, so
// oldest first. A line that is not a letter (one torn by a crash) is
// skipped. Files that do not exist hold no letters.
func (f *File) Read() ([]Letter, error) {
	unlock, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Letter
	for _, path := range f.paths() {
		entries, err := readEntries(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.ok {
				out = append(out, e.letter)
			}
		}
	}
	return out, nil
}

// Refused is a letter sent again and refused again: Was as the file holds
// it, Now with the new refusal's reason and time.
type Refused struct{ Was, Now Letter }

// Settle records the outcome of sending letters again: each of delivered
// is taken out of the files, and each Was of refused is replaced by its
// Now, wherever they are by then (the gateway may have rotated them). A
// letter that is there twice is taken out, or replaced, once for each
// time it is named. Letters added meanwhile, and lines that are not
// letters, are kept as they are. It returns how many letters it took out.
func (f *File) Settle(delivered []Letter, refused []Refused) (int, error) {
	gone := map[string]int{}
	for _, l := range delivered {
		gone[identity(l)]++
	}
	again := map[string][]Letter{}
	for _, r := range refused {
		k := identity(r.Was)
		again[k] = append(again[k], r.Now)
	}
	unlock, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	removed := 0
	for _, path := range f.paths() {
		entries, err := readEntries(path)
		if err != nil {
			return removed, err
		}
		var out []byte
		changed := false
		for _, e := range entries {
			line := e.raw
			if e.ok {
				k := identity(e.letter)
				if gone[k] > 0 {
					gone[k]--
					removed++
					changed = true
					continue
				}
				if q := again[k]; len(q) > 0 {
					again[k] = q[1:]
					if line, err = json.Marshal(q[0]); err != nil {
						return removed, err
					}
					changed = true
				}
			}
			out = append(append(out, line...), '\n')
		}
		if changed {
			if err := replace(path, out); err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// paths are the files, the rotated one first.
func (f *File) paths() []string { return []string{f.path + ".1", f.path} }

// lock takes the exclusive lock on path.lock, waiting for it, and returns
// what gives it back.
func (f *File) lock() (unlock func(), err error) {
	lf, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dead-letter lock: %w", err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, fmt.Errorf("dead-letter lock %s: %w", lf.Name(), err)
	}
	return func() { lf.Close() }, nil
}

// entry is one line of a file: the letter it holds, if it is one.
type entry struct {
	raw    []byte
	letter Letter
	ok     bool
}

// readEntries reads every line of path; a file that does not exist has
// none. Lines may be as long as the longest line protocol line.
func readEntries(path string) ([]entry, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var out []entry
	r := bufio.NewReaderSize(file, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if line = bytes.TrimSuffix(line, []byte("\n")); len(line) > 0 {
			e := entry{raw: line}
			e.ok = json.Unmarshal(line, &e.letter) == nil
			out = append(out, e)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// identity is what tells letters apart: all of them, as the file has it.
func identity(l Letter) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// replace writes data in place of path, through a synced temporary file
// and a rename, so a crash leaves the old file or the new one whole.
func replace(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
