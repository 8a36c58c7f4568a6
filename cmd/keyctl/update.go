package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// UpdateOptions are the inputs of keyctl update.
type UpdateOptions struct {
	IO        *IOStreams
	Ctx       context.Context
	OpenStore func(context.Context) (*keystore.Store, error)
	Now       func() time.Time
	Format    outputFormat
	DBPath    string

	Ref     keyRef
	Changes keystore.Update // only what the flags ask to change
}

// NewCmdUpdate returns the update command. runF, if not nil, replaces
// updateRun.
func NewCmdUpdate(f *Factory, runF func(*UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{IO: f.IO, OpenStore: f.openStore, Now: f.Now}
	var policy policyFlags
	cmd := &cobra.Command{
		Use:   "update {ID | KEY} [flags]",
		Short: "Change a key's expiry, scopes, limits or description",
		Long: `Change the policy of one key, named by its id or by the key itself. Only
what the flags name changes; --scope and --measurement replace the key's
lists. A running apiserver applies the change to the next request.

The key's value and host do not change: to replace a key, use rotate; to
stop it, revoke.`,
		Example: `  $ keyctl update 7 --expires-in 720h
  $ keyctl update 7 --no-expiry --description "web one, permanent"
  $ keyctl update 7 --scope submit --scope admin
  $ keyctl update 7 --measurement cpu --measurement mem --rate 100 --burst 500
  $ keyctl update 7 --all-measurements --rate 0`,
		Args: oneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseKeyRef(args[0])
			if err != nil {
				return err
			}
			u, err := keystore.ParseUpdate(policy.input(cmd), opts.Now())
			if err != nil {
				return err
			}
			opts.Ref = ref
			opts.Changes = u
			opts.Ctx = cmd.Context()
			opts.Format = f.format
			opts.DBPath = f.dbPath
			if runF != nil {
				return runF(opts)
			}
			return updateRun(opts)
		},
	}
	addPolicyFlags(cmd, &policy, true)
	return cmd
}

func updateRun(opts *UpdateOptions) error {
	s, k, err := openKey(opts.Ctx, opts.OpenStore, opts.Ref, opts.DBPath)
	if err != nil {
		return err
	}
	defer s.Close()
	k, err = s.Update(opts.Ctx, k.ID, opts.Changes)
	if err != nil {
		return err
	}
	now := opts.Now()
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, newKeyJSON(k, now))
	}
	return writeKeyDetails(opts.IO.Out, k, now)
}
