package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// ApplyOptions are the inputs of keyctl apply.
type ApplyOptions struct {
	cmdOptions

	File       string // -f: the key file, "-" for standard input
	DryRun     bool
	Prune      bool
	SecretsOut string // --secrets-out: where new keys' values go, instead of standard output
}

// NewCmdApply returns the apply command. runF, if not nil, replaces
// applyRun.
func NewCmdApply(f *Factory, runF func(*ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{cmdOptions: newCmdOptions(f, f.createStore)}
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--prune] [--secrets-out FILE]",
		Short: "Make the keys a file declares exist",
		Long: `Make the key store hold the keys a file declares, as keyctl export writes
it: YAML or JSON, a "keys" list in which each key has a unique name, its
hostname, and its policy (description, scopes, measurements, rate, burst,
expires_at; what is left out is the default). -f - reads standard input.

apply compares the file with the store by name and prints a plan: create
(no key has the name), update (a policy differs), replace (the hostname
differs: the key is revoked and a new one made), unchanged, and with
--prune revoke, for keys an earlier apply made that the file no longer
names; keys made otherwise are never pruned. --dry-run stops after the
plan and writes nothing. Otherwise the plan is applied in one transaction,
after checking that the store still gives the same plan, and recorded in
the audit log; if the store changed meanwhile nothing is written and apply
exits 4: run it again. Applying the same file again changes nothing.

A new key's value is shown once: in the table on a terminal, in -o json,
or written to --secrets-out FILE (mode 0600, a JSON object of name to key,
written before the keys start to work; {} when no key is made). When standard output is not a
terminal, a plan that makes keys needs -o json or --secrets-out.

A file that cannot be used (it does not parse; an unknown field, a name
given twice, a bad hostname, an expiry in the past) is reported with its
line, column and entry; nothing is written and apply exits 2.`,
		Example: `  $ keyctl apply -f keys.yaml --dry-run
  $ keyctl apply -f keys.yaml
  $ keyctl apply -f keys.yaml --prune --secrets-out new-keys.json
  $ keyctl export | keyctl --db other.db apply -f -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("file") || strings.TrimSpace(opts.File) == "" {
				return usageErrorf("-f FILE is required (- for standard input)")
			}
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if opts.DryRun {
				opts.OpenStore = f.openStore
			}
			return runVerb(opts, runF, applyRun)
		},
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the key `file`, YAML or JSON; - for standard input")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and write nothing")
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "revoke the keys an earlier apply made that the file no longer names")
	cmd.Flags().StringVar(&opts.SecretsOut, "secrets-out", "", "write new keys' values to `file` (mode 0600), not to standard output")
	return cmd
}

func applyRun(opts *ApplyOptions) error {
	defs, src, err := readKeyFile(opts.IO, opts.File, opts.Now(), keyfile.Definitions)
	if err != nil {
		return err
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	plan, err := s.Plan(opts.Ctx, defs, keystore.PlanOptions{ManagedBy: keystore.ManagedByApply, Prune: opts.Prune})
	if err != nil {
		return err
	}
	out := planOutput{ios: opts.IO, format: opts.Format, src: src, secretsOut: opts.SecretsOut}
	if err := opts.checkSecrets(plan); err != nil {
		return err
	}
	if opts.DryRun || !plan.Changed() {
		if !opts.DryRun && opts.SecretsOut != "" {
			// The file is always written, so a pipeline can rely on it.
			if _, err := applyKeeping(opts, nil, plan); err != nil {
				return err
			}
		}
		return out.done(plan, opts.DryRun, false)
	}
	if err := out.plan(plan); err != nil {
		return err
	}
	applied, err := applyKeeping(opts, s, plan)
	if err != nil {
		return err
	}
	return out.done(applied, false, true)
}

// readKeyFile reads and parses the key file at path ("-" for standard
// input) and turns its entries into what the verb takes with convert
// (keyfile.Definitions or keyfile.Hashed), whose errors name the file's
// lines. It returns the file's name for messages too.
func readKeyFile[T any](ios *IOStreams, path string, now time.Time, convert func([]keyfile.Entry, string, time.Time) (T, error)) (T, string, error) {
	var zero T
	data, src, err := readInput(ios, path)
	if err != nil {
		return zero, "", err
	}
	entries, err := keyfile.Parse(data, src)
	if err != nil {
		return zero, "", err
	}
	v, err := convert(entries, src, now)
	return v, src, err
}

// checkSecrets refuses a plan that makes keys whose values would be shown
// nowhere: standard output is not a terminal and neither -o json nor
// --secrets-out was given.
func (o *ApplyOptions) checkSecrets(p keystore.Plan) error {
	made := p.Count(keystore.PlanCreate) + p.Count(keystore.PlanReplace)
	if o.DryRun || made == 0 || o.IO.OutTTY || o.Format == formatJSON || o.SecretsOut != "" {
		return nil
	}
	return usageErrorf("the plan makes %d new keys, whose values would be shown nowhere: standard output is not a terminal; "+
		"give -o json or --secrets-out FILE (nothing was written)", made)
}

// applyKeeping applies p, on s unless s is nil; with --secrets-out it
// first writes the new keys' values to a temporary file beside the one
// asked for, and moves it there once they work, so that no key works whose
// value was not kept.
func applyKeeping(opts *ApplyOptions, s *keystore.Store, p keystore.Plan) (keystore.Plan, error) {
	if opts.SecretsOut == "" {
		return s.Apply(opts.Ctx, p)
	}
	tmp, err := writeSecrets(opts.SecretsOut, p)
	if err != nil {
		return keystore.Plan{}, err
	}
	applied := p
	if s != nil {
		if applied, err = s.Apply(opts.Ctx, p); err != nil {
			os.Remove(tmp)
			return keystore.Plan{}, err
		}
	}
	if err := os.Rename(tmp, opts.SecretsOut); err != nil {
		return keystore.Plan{}, fmt.Errorf("the keys were made, but their values are in %s, not %s: %w", tmp, opts.SecretsOut, err)
	}
	return applied, nil
}

// writeSecrets writes the values of the keys p makes, as a JSON object of
// name to key, to a new file of mode 0600 in path's directory, synced to
// disk, and returns its name.
func writeSecrets(path string, p keystore.Plan) (string, error) {
	values := map[string]string{}
	for _, c := range p.Changes {
		if c.Value != "" {
			values[c.Name] = c.Value
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("--secrets-out: %w (nothing was written to the key store)", err)
	}
	err = writeJSON(f, values)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("--secrets-out: %w (nothing was written to the key store)", err)
	}
	return f.Name(), nil
}
