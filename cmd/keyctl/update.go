package main

import (
	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// UpdateOptions are the inputs of keyctl update.
type UpdateOptions struct {
	cmdOptions

	Changes keystore.Update // only what the flags ask to change
}

// NewCmdUpdate returns the update command. runF, if not nil, replaces
// updateRun.
func NewCmdUpdate(f *Factory, runF func(*UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	var policy policyFlags
	cmd := &cobra.Command{
		Use:   "update {ID | KEY | NAME} [flags]",
		Short: "Change a key's expiry, scopes, limits or description",
		Long: `Change the policy or the name of one key, named by its id, by the key
itself or by its name. Only what the flags name changes; --scope and
--measurement replace the key's lists; --name "" removes the name. A
running apiserver applies the change to the next request.

The key's value and host do not change: to replace a key, use rotate; to
stop it, revoke.`,
		Example: `  $ keyctl update 7 --expires-in 720h
  $ keyctl update 7 --no-expiry --description "web one, permanent"
  $ keyctl update 7 --scope submit --scope admin
  $ keyctl update 7 --measurement cpu --measurement mem --rate 100 --burst 500
  $ keyctl update 7 --all-measurements --rate 0
  $ keyctl update 7 --name web-1-telegraf`,
		Args: oneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			u, err := keystore.ParseUpdate(policy.input(cmd), opts.Now())
			if err != nil {
				return err
			}
			opts.Changes = u
			return runVerb(opts, runF, updateRun)
		},
	}
	addPolicyFlags(cmd, &policy, true)
	return cmd
}

func updateRun(opts *UpdateOptions) error {
	s, k, err := opts.openKey()
	if err != nil {
		return err
	}
	defer s.Close()
	if k, err = s.Update(opts.Ctx, k.ID, opts.Changes); err != nil {
		return err
	}
	return opts.writeKey(k)
}
