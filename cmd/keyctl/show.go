package main

import (
	"github.com/spf13/cobra"
)

// ShowOptions are the inputs of keyctl show.
type ShowOptions struct {
	cmdOptions
}

// NewCmdShow returns the show command. runF, if not nil, replaces showRun.
func NewCmdShow(f *Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "show {ID | KEY | NAME}",
		Short: "Show one key's details",
		Long: `Show everything the store knows about one key, named by its id, by the
key itself (to find out which record a key you hold belongs to), or by its
name (the key not revoked of that name, else the latest revoked one).`,
		Example: `  $ keyctl show 7
  $ keyctl show web-1-telegraf
  $ keyctl show "$KEY" -o json`,
		Args: oneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, showRun)
		},
	}
	return cmd
}

func showRun(opts *ShowOptions) error {
	s, k, err := opts.openKey()
	if err != nil {
		return err
	}
	defer s.Close()
	return opts.writeKey(k)
}
