package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metricgate/metricgate/pkg/deadletter"
)

// ReplayOptions tune Replay. The zero value sends every letter again.
type ReplayOptions struct {
	// Select, if set, keeps only the letters to send again, such as those
	// of one key; the others stay in the file as they are.
	Select func(DeadLetter) bool
	// MaxExtraWrites bounds the writes spent on each bucket's letters to
	// find those InfluxDB refuses again, as Options.MaxExtraWrites does
	// for a batch; default 16.
	MaxExtraWrites int
	// Now stamps the letters refused again; default time.Now.
	Now func() time.Time
}

// ReplayReport says what a Replay did with the letters it sent again.
type ReplayReport struct {
	// Delivered letters InfluxDB took; they are out of the file.
	Delivered int `json:"delivered"`
	// Refused letters InfluxDB refused again; they stay, with the new
	// reason and time.
	Refused int `json:"refused"`
	// NotSent letters stay as they were: InfluxDB could not take them now
	// (Error says why). Some of them may have been written; sending them
	// again writes the same points, which InfluxDB stores once.
	NotSent int    `json:"not_sent"`
	Error   string `json:"error,omitempty"`
}

// Replay sends the letters of file that o selects to InfluxDB again,
// through out, each bucket's in one write (the letter's bucket, "" being
// out's own), once the cause of their refusal is fixed: a bucket created,
// a retention policy widened, a field's type fixed. What InfluxDB takes is
// taken out of the file, what it refuses again (found as the forwarder
// finds it, within a budget of writes) stays with the new reason, and a
// bucket InfluxDB cannot take writes for now is not retried: its letters
// stay as they were and the report says why. Letters the gateway adds to
// the file meanwhile are kept. It returns an error only when the file
// cannot be read or rewritten.
func Replay(ctx context.Context, file *deadletter.File, out Writer, o ReplayOptions) (ReplayReport, error) {
	if o.MaxExtraWrites <= 0 {
		o.MaxExtraWrites = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	all, err := file.Read()
	if err != nil {
		return ReplayReport{}, fmt.Errorf("read the dead letters: %w", err)
	}
	var letters []DeadLetter
	for _, l := range all {
		if o.Select == nil || o.Select(l) {
			letters = append(letters, l)
		}
	}
	var (
		r         ReplayReport
		delivered []DeadLetter
		again     []deadletter.Refused
		failures  []error
	)
	for _, group := range byBucket(letters) {
		ok, refusedAgain, err := resend(ctx, out, group, o)
		if err != nil {
			r.NotSent += len(group.letters)
			failures = append(failures, fmt.Errorf("bucket %s: %w", shownBucket(group.bucket), err))
			continue
		}
		delivered = append(delivered, ok...)
		again = append(again, refusedAgain...)
	}
	r.Delivered, r.Refused = len(delivered), len(again)
	if err := errors.Join(failures...); err != nil {
		r.Error = err.Error()
	}
	if _, err := file.Settle(delivered, again); err != nil {
		return r, fmt.Errorf("rewrite the dead letters: %w", err)
	}
	return r, nil
}

// bucketLetters are the letters bound for one bucket.
type bucketLetters struct {
	bucket  string
	letters []DeadLetter
}

// byBucket groups letters by bucket, in the order the buckets first
// appear.
func byBucket(letters []DeadLetter) []bucketLetters {
	var groups []bucketLetters
	index := map[string]int{}
	for _, l := range letters {
		i, ok := index[l.Bucket]
		if !ok {
			i = len(groups)
			index[l.Bucket] = i
			groups = append(groups, bucketLetters{bucket: l.Bucket})
		}
		groups[i].letters = append(groups[i].letters, l)
	}
	return groups
}

// resend sends g's letters again and returns those InfluxDB took and those
// it refused again, or the error that kept it from taking them now.
func resend(ctx context.Context, out Writer, g bucketLetters, o ReplayOptions) (delivered []DeadLetter, again []deadletter.Refused, err error) {
	lines := make([]line, len(g.letters))
	for i, l := range g.letters {
		lines[i] = line{data: []byte(l.Line + "\n"), key: l.KeyID, from: i}
	}
	// One attempt each: a replay is run by a person, who is better told
	// that InfluxDB is down than kept waiting.
	send := func(ctx context.Context, body []byte, _ int) error { return out.WriteTo(ctx, g.bucket, body) }
	err = send(ctx, join(lines), len(lines))
	if err != nil && !refused(err) {
		return nil, nil, err
	}
	buried := map[int]DeadLetter{}
	if err != nil {
		s := &settlement{ctx: ctx, bucket: g.bucket, send: send, budget: o.MaxExtraWrites, max: o.MaxExtraWrites, now: o.Now().UTC()}
		if err := s.resolve(lines, err); err != nil {
			return nil, nil, err
		}
		for i, l := range s.buried {
			buried[l.from] = s.dead[i]
		}
	}
	for i, l := range g.letters {
		if now, ok := buried[i]; ok {
			again = append(again, deadletter.Refused{Was: l, Now: now})
		} else {
			delivered = append(delivered, l)
		}
	}
	return delivered, again, nil
}

// shownBucket names bucket for a message, "" being the gateway's own.
func shownBucket(bucket string) string {
	if bucket == "" {
		return "(the gateway's own)"
	}
	return fmt.Sprintf("%q", bucket)
}
