package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// ackFile is the file in the spool's directory that holds the
// acknowledged position.
const ackFile = "ack"

// Ack records that b was delivered: its records are dropped from the spool
// and fully delivered segments deleted.
func (s *Spool) Ack(b Batch) error {
	if b.bytes == 0 {
		return nil
	}
	s.mu.Lock()
	s.ack = b.end
	s.bytes -= b.bytes
	if s.bytes < s.opts.MaxBytes/10*9 {
		s.full = false
	}
	s.points.Add(-int64(b.Points))
	var remove []string
	for len(s.segs) > 1 && s.segs[0].sealed && (s.segs[0].id < s.ack.seg || s.ack.off >= s.segs[0].end) {
		if s.segs[0].id == s.ack.seg {
			s.ack = position{seg: s.segs[1].id}
		}
		remove = append(remove, s.segs[0].path)
		s.segs = s.segs[1:]
	}
	ack := s.ack
	s.mu.Unlock()
	// The ack file is a hint: if it is lost, delivered records are sent
	// again, which InfluxDB absorbs (same series, time and value).
	if err := writeAck(s.opts.Dir, ack); err != nil {
		return err
	}
	for _, p := range remove {
		os.Remove(p)
	}
	return nil
}

func writeAck(dir string, p position) error {
	tmp := filepath.Join(dir, ackFile+".tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", p.seg, p.off)), 0o600); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ackFile)); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *Spool) readAck() position {
	data, err := os.ReadFile(filepath.Join(s.opts.Dir, ackFile))
	if err != nil {
		return position{}
	}
	var p position
	if _, err := fmt.Sscanf(string(data), "%d %d", &p.seg, &p.off); err != nil {
		return position{}
	}
	return p
}
