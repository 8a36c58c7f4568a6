package main

import (
	"github.com/spf13/cobra"
)

// ReleaseOptions are the inputs of keyctl release: the key, by Ref.
type ReleaseOptions struct {
	cmdOptions
}

// NewCmdRelease returns the release command. runF, if not nil, replaces
// releaseRun.
func NewCmdRelease(f *Factory, runF func(*ReleaseOptions) error) *cobra.Command {
	opts := &ReleaseOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "release {ID | KEY}",
		Short: "Let a quarantined key write again",
		Long: `Release a key the apiservers quarantined, named by its id or by the key
itself. A key whose points InfluxDB kept refusing (apiserver
--quarantine-after, 100 a minute by default) is quarantined: every
apiserver on the key store answers its writes with 429 until it is
released. keyctl list shows it as "quarantined", keyctl show says why.

Fix the cause first (what the host sends, or the key's bucket), send its
dead letters again if they are worth keeping (keyctl dead-letters replay
--key ID), then release it. Running apiservers take its writes again
within a second. Releasing a key that is not quarantined changes nothing.`,
		Example: `  $ keyctl list --quarantined
  $ keyctl show 7
  $ keyctl release 7`,
		Args: oneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, releaseRun)
		},
	}
	return cmd
}

func releaseRun(opts *ReleaseOptions) error {
	s, k, err := opts.openKey()
	if err != nil {
		return err
	}
	defer s.Close()
	k, changed, err := s.Release(opts.Ctx, k.ID)
	if err != nil {
		return err
	}
	if !changed {
		return opts.report(k, "%s is not quarantined; nothing changed.", capitalize(describeKey(k)))
	}
	return opts.report(k, "Released %s: its writes are taken again.", describeKey(k))
}
