package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"metricgate/pkg/keystore"
)

// ShowOptions are the inputs of keyctl show.
type ShowOptions struct {
	IO        *IOStreams
	Ctx       context.Context
	OpenStore func(context.Context) (*keystore.Store, error)
	Now       func() time.Time
	Format    outputFormat
	DBPath    string

	Ref keyRef
}

// NewCmdShow returns the show command. runF, if not nil, replaces showRun.
func NewCmdShow(f *Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IO, OpenStore: f.openStore, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "show {ID | KEY}",
		Short: "Show one key's details",
		Long: `Show everything the store knows about one key, named by its id or by the
key itself (to find out which record a key you hold belongs to).`,
		Example: `  $ keyctl show 7
  $ keyctl show "$KEY" -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("show takes one key id or key, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseKeyRef(args[0])
			if err != nil {
				return err
			}
			opts.Ref = ref
			opts.Ctx = cmd.Context()
			opts.Format = f.format
			opts.DBPath = f.dbPath
			if runF != nil {
				return runF(opts)
			}
			return showRun(opts)
		},
	}
	return cmd
}

func showRun(opts *ShowOptions) error {
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	k, err := lookUp(opts.Ctx, s, opts.Ref, opts.DBPath)
	if err != nil {
		return err
	}
	now := opts.Now()
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, newKeyJSON(k, now))
	}

	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	rate, burst := "server default", "server default"
	if k.Rate != 0 {
		rate = strconv.FormatFloat(k.Rate, 'f', -1, 64) + " points/s"
	}
	if k.Burst != 0 {
		burst = strconv.Itoa(k.Burst) + " points"
	}
	lastUsed := orNone(formatTime(k.LastUsedAt), "never")
	if k.LastUsedAddr != "" {
		lastUsed += " from " + printable(k.LastUsedAddr)
	}
	replacedBy := "-"
	if k.ReplacedBy != 0 {
		replacedBy = strconv.FormatInt(k.ReplacedBy, 10)
	}
	fields := []struct{ name, value string }{
		{"ID", strconv.FormatInt(k.ID, 10)},
		{"Prefix", printable(k.Prefix)},
		{"Hostname", printable(k.Hostname)},
		{"Description", orNone(printable(k.Description), "-")},
		{"Status", string(k.Status(now))},
		{"Scopes", printable(strings.Join(k.Scopes, ", "))},
		{"Measurements", orNone(printable(strings.Join(k.Measurements, ", ")), "any")},
		{"Rate", rate},
		{"Burst", burst},
		{"Created", formatTime(k.CreatedAt)},
		{"Revoked", orNone(formatTime(k.RevokedAt), "-")},
		{"Expires", orNone(formatTime(k.ExpiresAt), "never")},
		{"Replaced by", replacedBy},
		{"Last used", lastUsed},
		{"Requests", strconv.FormatInt(k.Requests, 10)},
		{"Points", strconv.FormatInt(k.Points, 10)},
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}
