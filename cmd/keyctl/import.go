package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// ImportOptions are the inputs of keyctl import.
type ImportOptions struct {
	cmdOptions

	Hashed string // --hashed: the file of hashed keys, "-" for standard input
}

// NewCmdImport returns the import command. runF, if not nil, replaces
// importRun.
func NewCmdImport(f *Factory, runF func(*ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{cmdOptions: newCmdOptions(f, f.createStore)}
	cmd := &cobra.Command{
		Use:   "import --hashed FILE",
		Short: "Bring in keys by their SHA-256 hashes, so their clients keep working",
		Long: `Store keys that exist elsewhere by their hashes: keys another system made,
or a store's keys exported with keyctl export --with-hashes. Nobody handles
a key's value, and the clients that hold the keys keep working.

The file is the one apply reads (YAML or JSON, "-" for standard input),
each key with its name, hostname and policy, and a "hash": the SHA-256, in
64 hex digits, of the key's value as clients send it (of a UUID, of its
lower-case form, as the gateway hashes it; a value longer than 64 bytes is
refused at the door and cannot be a key). "prefix", the value's first 8
characters in lower-case hex, is shown in lists; without it the key is
listed as legacy.

All keys are stored in one transaction, or none: a hash of the wrong
length, an unknown field, a name given twice is reported with its line and
entry, nothing is written, and import exits 2. A key whose hash the store
holds with the same name and hostname is left as it is, so importing a
file again changes nothing; with another name or hostname it is an error.`,
		Example: `  $ keyctl import --hashed hashes.yaml
  $ keyctl --db old.db export --with-hashes | keyctl --db new.db import --hashed -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(opts.Hashed) == "" {
				return usageErrorf("--hashed FILE is required (- for standard input)")
			}
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, importRun)
		},
	}
	cmd.Flags().StringVar(&opts.Hashed, "hashed", "", "the `file` of keys with their SHA-256 hashes, YAML or JSON; - for standard input")
	return cmd
}

func importRun(opts *ImportOptions) error {
	keys, src, err := readKeyFile(opts.IO, opts.Hashed, opts.Now(), keyfile.Hashed)
	if err != nil {
		return err
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	changes, err := s.Import(opts.Ctx, keys)
	if err != nil {
		return err
	}
	p := keystore.Plan{Changes: changes}
	out := planOutput{ios: opts.IO, format: opts.Format, src: src, verb: "Imported"}
	if p.Changed() {
		if err := out.plan(p); err != nil {
			return err
		}
	}
	return out.done(p, false, p.Changed())
}
