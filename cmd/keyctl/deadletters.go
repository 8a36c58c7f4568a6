package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
)

// deadLetterFile is the dead-letter file's name in the spool directory,
// as the apiserver names it.
const deadLetterFile = "dead-letter.jsonl"

// DeadLettersOptions are the inputs the dead-letters verbs share: the
// spool directory whose dead-letter files they read, and the key whose
// letters they keep (0 for all).
type DeadLettersOptions struct {
	cmdOptions

	SpoolDir string
	KeyID    int64
}

// NewCmdDeadLetters returns the dead-letters command and its verbs.
func NewCmdDeadLetters(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead-letters {list | replay}",
		Short: "Show the points InfluxDB refused, and send them again",
		Long: `The apiserver keeps the points InfluxDB refused for good (a field type
conflict, a point beyond the retention policy, a key's bucket that does not
exist) in its spool directory, in dead-letter.jsonl and, once that passes
--dead-letter-max-bytes, dead-letter.jsonl.1: each with the key that sent
it, its bucket, InfluxDB's reason and the time. list shows them; replay
sends them to InfluxDB again once the cause is fixed, takes out of the
files what InfluxDB took, and keeps what it refused again with the new
reason. Both may run beside a running apiserver on the same directory.`,
		Example: `  $ keyctl dead-letters list --spool-dir /var/lib/metricgate/spool
  $ keyctl dead-letters list --key 7 -o json
  $ keyctl dead-letters replay --key 7 --influx-url http://influx:8086 --influx-bucket metricgate`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdDeadLettersList(f, nil), NewCmdDeadLettersReplay(f, nil))
	return cmd
}

// addDeadLetterFlags adds the flags the dead-letters verbs share.
func addDeadLetterFlags(cmd *cobra.Command, f *Factory, opts *DeadLettersOptions) {
	dir := "spool"
	if env := f.Getenv("APISERVER_SPOOL_DIR"); env != "" {
		dir = env
	}
	cmd.Flags().StringVar(&opts.SpoolDir, "spool-dir", dir, "the apiserver's spool `directory` (env APISERVER_SPOOL_DIR)")
	cmd.Flags().Int64Var(&opts.KeyID, "key", 0, "only the letters of the key with this `id`")
}

// file returns the dead-letter file of the spool directory, or an error
// naming the directory if there is none.
func (o *DeadLettersOptions) file() (*deadletter.File, error) {
	if o.KeyID < 0 {
		return nil, usageErrorf("--key must be a key id, got %d", o.KeyID)
	}
	if fi, err := os.Stat(o.SpoolDir); errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("no spool directory at %s (set --spool-dir or APISERVER_SPOOL_DIR)", o.SpoolDir)
	}
	return deadletter.NewFile(filepath.Join(o.SpoolDir, deadLetterFile), 0), nil
}

// selected reports whether l is one of the letters the verb acts on.
func (o *DeadLettersOptions) selected(l deadletter.Letter) bool {
	return o.KeyID == 0 || l.KeyID == o.KeyID
}

// DeadLettersListOptions are the inputs of keyctl dead-letters list.
type DeadLettersListOptions struct {
	DeadLettersOptions

	Limit int // the newest this many; 0 for all
}

// NewCmdDeadLettersList returns the dead-letters list command. runF, if not
// nil, replaces deadLettersListRun.
func NewCmdDeadLettersList(f *Factory, runF func(*DeadLettersListOptions) error) *cobra.Command {
	opts := &DeadLettersListOptions{DeadLettersOptions: DeadLettersOptions{cmdOptions: newCmdOptions(f, f.openStore)}}
	cmd := &cobra.Command{
		Use:   "list [--spool-dir DIR] [--key ID] [--limit N]",
		Short: "List the points InfluxDB refused",
		Long: `List the dead letters of a spool directory, oldest first. On a terminal
the list is a table, its reasons and lines cut to fit. Otherwise each
letter is one line of tab-separated fields without a header: time, key
id, bucket (empty for the gateway's own), reason, the line of line
protocol, and "unresolved" for a line the apiserver stopped looking into
(InfluxDB may have written it). -o json prints them whole.`,
		Example: `  $ keyctl dead-letters list --spool-dir /var/lib/metricgate/spool --limit 20
  $ keyctl dead-letters list --key 7 -o json | jq -r '.[].reason' | sort | uniq -c`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 0 {
				return usageErrorf("--limit must be 0 (all) or more, got %d", opts.Limit)
			}
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, deadLettersListRun)
		},
	}
	addDeadLetterFlags(cmd, f, &opts.DeadLettersOptions)
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "only the newest `n` letters (0: all)")
	return cmd
}

func deadLettersListRun(opts *DeadLettersListOptions) error {
	file, err := opts.file()
	if err != nil {
		return err
	}
	all, err := file.Read()
	if err != nil {
		return err
	}
	letters := slices.DeleteFunc(all, func(l deadletter.Letter) bool { return !opts.selected(l) })
	if opts.Limit > 0 && len(letters) > opts.Limit {
		letters = letters[len(letters)-opts.Limit:]
	}
	switch {
	case opts.Format == formatJSON:
		return writeJSON(opts.IO.Out, nonNilLetters(letters))
	case !opts.IO.OutTTY:
		for _, l := range letters {
			unresolved := ""
			if l.Unresolved {
				unresolved = "unresolved"
			}
			fmt.Fprintf(opts.IO.Out, "%s\t%d\t%s\t%s\t%s\t%s\n", formatTime(l.Time), l.KeyID, printable(l.Bucket),
				printable(l.Reason), printable(l.Line), unresolved)
		}
		return nil
	case len(letters) == 0:
		fmt.Fprintf(opts.IO.ErrOut, "No dead letters in %s.\n", opts.SpoolDir)
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKEY\tBUCKET\tREASON\tLINE")
	for _, l := range letters {
		bucket := printable(l.Bucket)
		if bucket == "" {
			bucket = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortTime(l.Time, "-"), strconv.FormatInt(l.KeyID, 10), bucket,
			truncate(printable(l.Reason), 60), truncate(printable(l.Line), 60))
	}
	return tw.Flush()
}

// nonNilLetters is letters, or an empty list that encodes as [].
func nonNilLetters(letters []deadletter.Letter) []deadletter.Letter {
	if letters == nil {
		return []deadletter.Letter{}
	}
	return letters
}

// DeadLettersReplayOptions are the inputs of keyctl dead-letters replay.
type DeadLettersReplayOptions struct {
	DeadLettersOptions

	Influx influx.Config
}

// NewCmdDeadLettersReplay returns the dead-letters replay command. runF, if
// not nil, replaces deadLettersReplayRun.
func NewCmdDeadLettersReplay(f *Factory, runF func(*DeadLettersReplayOptions) error) *cobra.Command {
	opts := &DeadLettersReplayOptions{DeadLettersOptions: DeadLettersOptions{cmdOptions: newCmdOptions(f, f.openStore)}}
	cmd := &cobra.Command{
		Use:   "replay [--spool-dir DIR] [--key ID] [--influx-url URL ...]",
		Short: "Send the points InfluxDB refused again, once the cause is fixed",
		Long: `Send the dead letters of a spool directory to InfluxDB again, each
bucket's in one write: the letter's bucket, or --influx-bucket for the
letters of the gateway's own. Fix the cause first: create a key's bucket,
widen the retention policy, or drop the measurement whose field type
conflicts. What InfluxDB takes is taken out of the dead-letter files;
what it refuses again is found as the apiserver finds it and kept, with
InfluxDB's new reason. When InfluxDB cannot be reached the letters stay
as they were and keyctl exits 1. Points InfluxDB already holds are
written again unchanged, which it stores once.

Give it the apiserver's InfluxDB settings, or the same environment
variables.`,
		Example: `  $ keyctl dead-letters replay --spool-dir /var/lib/metricgate/spool --key 7
  $ INFLUX_URL=http://influx:8086 INFLUX_BUCKET=metricgate keyctl dead-letters replay -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, deadLettersReplayRun)
		},
	}
	addDeadLetterFlags(cmd, f, &opts.DeadLettersOptions)
	env := func(name, def string) string {
		if v := f.Getenv(name); v != "" {
			return v
		}
		return def
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Influx.URL, "influx-url", env("INFLUX_URL", "http://127.0.0.1:8086"), "InfluxDB `URL` (env INFLUX_URL)")
	fl.StringVar(&opts.Influx.Token, "influx-token", env("INFLUX_TOKEN", ""), "InfluxDB `token`; for 1.x empty or user:pass (env INFLUX_TOKEN)")
	fl.StringVar(&opts.Influx.Org, "influx-org", env("INFLUX_ORG", ""), "InfluxDB `organization`; ignored by 1.x (env INFLUX_ORG)")
	fl.StringVar(&opts.Influx.Bucket, "influx-bucket", env("INFLUX_BUCKET", "metricgate"),
		"the apiserver's --influx-bucket, for letters of keys without a bucket of their own (env INFLUX_BUCKET)")
	return cmd
}

func deadLettersReplayRun(opts *DeadLettersReplayOptions) error {
	file, err := opts.file()
	if err != nil {
		return err
	}
	out := influx.New(opts.Influx)
	defer out.Close()
	r, err := forward.Replay(opts.Ctx, file, out, forward.ReplayOptions{Select: opts.selected, Now: opts.Now})
	if err != nil {
		return err
	}
	if opts.Format == formatJSON {
		if err := writeJSON(opts.IO.Out, r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(opts.IO.Out, "Sent %d dead letters again: %d delivered and taken out of %s, %d refused again (kept, with the new reason), %d not sent.\n",
			r.Delivered+r.Refused+r.NotSent, r.Delivered, file.Path(), r.Refused, r.NotSent)
	}
	if r.NotSent > 0 {
		return fmt.Errorf("%d dead letters were not sent and are kept: %s", r.NotSent, r.Error)
	}
	return nil
}
