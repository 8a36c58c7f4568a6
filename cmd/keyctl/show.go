package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
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
		Args: oneKey,
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
	s, k, err := openKey(opts.Ctx, opts.OpenStore, opts.Ref, opts.DBPath)
	if err != nil {
		return err
	}
	defer s.Close()
	now := opts.Now()
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, newKeyJSON(k, now))
	}
	return writeKeyDetails(opts.IO.Out, k, now)
}
