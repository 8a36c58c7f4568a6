package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// ExportOptions are the inputs of keyctl export.
type ExportOptions struct {
	cmdOptions

	WithHashes bool
	NamedOnly  bool
}

// NewCmdExport returns the export command. runF, if not nil, replaces
// exportRun.
func NewCmdExport(f *Factory, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "export [--with-hashes] [--named-only]",
		Short: "Write the keys' definitions as a file apply reads",
		Long: `Write the definition of every active key (its name, hostname and policy;
never its value) as the file keyctl apply reads, in YAML, or in JSON with
-o json, ordered by name. Applying the file to an empty store makes keys
with the same definitions (and new values); applying it to the store it
came from changes nothing.

A file knows keys by their names: a key without one is an error that lists
them (keyctl update ID --name NAME gives one), unless --named-only leaves
them out.

--with-hashes adds each key's SHA-256 and display prefix, so that keyctl
import --hashed restores the keys themselves on another store and their
clients keep working. Such a file lets whoever holds it make a store accept
the keys: keep it as safe as the store.`,
		Example: `  $ keyctl export > keys.yaml
  $ keyctl export -o json | jq '.keys[].name'
  $ keyctl export --with-hashes > hashes.yaml && keyctl --db new.db import --hashed hashes.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			return runVerb(opts, runF, exportRun)
		},
	}
	cmd.Flags().BoolVar(&opts.WithHashes, "with-hashes", false, "add each key's SHA-256 and prefix, for keyctl import --hashed")
	cmd.Flags().BoolVar(&opts.NamedOnly, "named-only", false, "leave out the keys without a name instead of failing")
	return cmd
}

func exportRun(opts *ExportOptions) error {
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.List(opts.Ctx, keystore.Filter{})
	if err != nil {
		return err
	}
	var unnamed []string
	keys = slices.DeleteFunc(keys, func(k keystore.Key) bool {
		if k.Name == "" {
			unnamed = append(unnamed, fmt.Sprint(k.ID))
		}
		return k.Name == ""
	})
	if len(unnamed) > 0 && !opts.NamedOnly {
		return fmt.Errorf("%s %s no name, and a key file knows keys by name: %s; "+
			"name them (keyctl update ID --name NAME) or give --named-only", plural(len(unnamed), "active key"),
			map[bool]string{true: "has", false: "have"}[len(unnamed) == 1], strings.Join(unnamed, ", "))
	}
	if len(unnamed) > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "Left out %s without a name: %s.\n", plural(len(unnamed), "key"), strings.Join(unnamed, ", "))
	}
	slices.SortFunc(keys, func(a, b keystore.Key) int { return cmp.Compare(a.Name, b.Name) })
	var hashes map[int64][]byte
	if opts.WithHashes {
		if hashes, err = s.Hashes(opts.Ctx); err != nil {
			return err
		}
	}
	format := keyfile.YAML
	if opts.Format == formatJSON {
		format = keyfile.JSON
	}
	return keyfile.Write(opts.IO.Out, keys, hashes, format)
}
