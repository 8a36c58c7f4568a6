package main

import (
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// ListOptions are the inputs of keyctl list.
type ListOptions struct {
	cmdOptions

	Hostname       string
	All            bool
	Legacy         bool          // only keys imported with a value that is not a UUID
	Quarantined    bool          // only quarantined keys
	ExpiringWithin time.Duration // 0: any expiry
	UnusedSince    time.Duration // 0: however recently used
}

// NewCmdList returns the list command. runF, if not nil, replaces listRun.
func NewCmdList(f *Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List keys",
		Long: `List active keys in id order, or with --all revoked and expired keys too.
--expiring keeps the keys that expire within a time from now, --unused-since
those that have not been used for at least a time (counting a key never
used from when it was made). --legacy keeps the keys imported from the
original setup's database whose value is not a UUID: such a value may be
short or guessable, and has no display prefix (the table shows "legacy");
rotate each of them and give its host the new key.

A key the apiservers quarantined, because InfluxDB kept refusing its
points, shows as "quarantined" in the table's status column;
--quarantined keeps only those. keyctl release lets one write again.

On a terminal the list is a table. Otherwise each key is one line of
tab-separated fields without a header: id, prefix, hostname, description,
status, created, last used, expires, name, quarantined since, bucket
(times in RFC 3339, empty if never used, never expiring or not
quarantined; the name empty if none, the bucket for the gateway's own).
Keys themselves are never shown: the store does not have them.`,
		Example: `  $ keyctl list
  $ keyctl list --hostname web-1.example.com --all
  $ keyctl list --expiring 168h
  $ keyctl list --unused-since 720h
  $ keyctl list --legacy
  $ keyctl list --quarantined
  $ keyctl list -o json | jq '.[] | select(.requests == 0) | .id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for name, d := range map[string]time.Duration{"expiring": opts.ExpiringWithin, "unused-since": opts.UnusedSince} {
				if cmd.Flags().Changed(name) && d <= 0 {
					return usageErrorf("--%s must be positive, got %s", name, d)
				}
			}
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, listRun)
		},
	}
	cmd.Flags().StringVar(&opts.Hostname, "hostname", "", "only keys bound to `host`")
	cmd.Flags().BoolVarP(&opts.All, "all", "a", false, "include revoked and expired keys")
	cmd.Flags().BoolVar(&opts.Legacy, "legacy", false, "only keys imported from the original database whose value is not a UUID: rotate them")
	cmd.Flags().BoolVar(&opts.Quarantined, "quarantined", false, "only keys quarantined because InfluxDB kept refusing their points: release them")
	cmd.Flags().DurationVar(&opts.ExpiringWithin, "expiring", 0, "only keys that expire within `duration`, such as 168h")
	cmd.Flags().DurationVar(&opts.UnusedSince, "unused-since", 0, "only keys not used for at least `duration`, such as 720h")
	return cmd
}

func listRun(opts *ListOptions) error {
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.List(opts.Ctx, keystore.Filter{Hostname: opts.Hostname, All: opts.All,
		ExpiringWithin: opts.ExpiringWithin, UnusedSince: opts.UnusedSince, Quarantined: opts.Quarantined})
	if err != nil {
		return err
	}
	if opts.Legacy {
		keys = slices.DeleteFunc(keys, func(k keystore.Key) bool { return !k.Legacy() })
	}
	now := opts.Now()
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, newKeysJSON(keys, now))
	}
	if !opts.IO.OutTTY {
		for _, k := range keys {
			// Fields are only ever added at the end, so scripts that cut
			// them by position keep working.
			fmt.Fprintf(opts.IO.Out, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, printable(k.Prefix), printable(k.Hostname),
				printable(k.Description), k.Status(now), formatTime(k.CreatedAt), formatTime(k.LastUsedAt),
				formatTime(k.ExpiresAt), printable(k.Name), formatTime(k.QuarantinedAt), printable(k.Bucket))
		}
		return nil
	}
	if len(keys) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, noKeysMessage(opts))
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tHOSTNAME\tDESCRIPTION\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strconv.FormatInt(k.ID, 10), shownPrefix(k),
			orDash(printable(k.Name)), printable(k.Hostname), truncate(printable(k.Description), 40), shownStatus(k, now),
			shortTime(k.CreatedAt, "-"), shortTime(k.ExpiresAt, "never"), shortTime(k.LastUsedAt, "never"))
	}
	return tw.Flush()
}

// shownStatus is k's status at now for a table: "quarantined" for an
// active key the apiservers refuse until it is released.
func shownStatus(k keystore.Key, now time.Time) string {
	if st := k.Status(now); st != keystore.StatusActive || !k.Quarantined() {
		return string(st)
	}
	return "quarantined"
}

// orDash is s, or "-" for a table cell that is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shownPrefix is k's prefix for a table, or "legacy" for a key that has
// none (see keystore.Key.Legacy).
func shownPrefix(k keystore.Key) string {
	if k.Legacy() {
		return "legacy"
	}
	return printable(k.Prefix)
}

// noKeysMessage says, on a terminal, that the list is empty and why.
func noKeysMessage(opts *ListOptions) string {
	what := "No active keys"
	if opts.All {
		what = "No keys"
	}
	if opts.Legacy {
		what += " imported with a value that is not a UUID"
	}
	if opts.Quarantined {
		what += " quarantined"
	}
	if opts.Hostname != "" {
		what += " for host " + printable(opts.Hostname)
	}
	if opts.ExpiringWithin > 0 {
		what += " expiring within " + opts.ExpiringWithin.String()
	}
	if opts.UnusedSince > 0 {
		what += " unused for " + opts.UnusedSince.String()
	}
	return what + "."
}

// shortTime is t to the minute, in UTC, for a table; zero is shown as none.
func shortTime(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04")
}
