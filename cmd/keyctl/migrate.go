package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// MigrateOptions are the inputs of keyctl migrate.
type MigrateOptions struct {
	cmdOptions

	From, To string // the stores' addresses: SQLite paths or postgres:// URLs
	// Open opens a store at an address; create says whether a SQLite file
	// that does not exist may be made.
	Open func(ctx context.Context, addr string, create bool) (*keystore.Store, error)
}

// NewCmdMigrate returns the migrate command. runF, if not nil, replaces
// migrateRun.
func NewCmdMigrate(f *Factory, runF func(*MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{cmdOptions: newCmdOptions(f, f.openStore), Open: f.openAddr}
	cmd := &cobra.Command{
		Use:   "migrate --from SRC --to DST",
		Short: "Copy every key from one key store to another",
		Long: `Copy every key of the key store SRC into DST: from a SQLite file to a
PostgreSQL database that several apiservers share, or back. Each key keeps
its id, hash, prefix, host binding, scopes, measurements, limits, expiry,
revocation and rotation; its usage (per apiserver) and its audit entries
come with it. --db is not used.

The copy is one transaction, checked before it commits: DST gains every key
or none. Keys DST already holds are skipped, so running migrate again is
harmless. A key DST holds with another hash, or under another id, is an
error naming it, and nothing is written.

DST's schema is created if needed; a SQLite DST file is created if it does
not exist. SRC is read as it is at one moment: apiservers may keep running
on it, but what they change afterwards is not copied.`,
		Example: `  $ keyctl migrate --from api_keys.db --to postgres://metricgate:PASSWORD@db.example.com:5432/metricgate
  $ keyctl migrate --from "$KEYSTORE_DB" --to backup.db -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if opts.From == "" || opts.To == "" {
				return usageErrorf("migrate needs --from and --to")
			}
			if opts.From == opts.To {
				return usageErrorf("--from and --to name the same store")
			}
			return runVerb(opts, runF, migrateRun)
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", "", "the store to copy: a SQLite file `path` or a postgres:// URL")
	cmd.Flags().StringVar(&opts.To, "to", "", "the store to copy into: a SQLite file `path` or a postgres:// URL")
	return cmd
}

// migrateJSON is what migrate prints with -o json.
type migrateJSON struct {
	From         string `json:"from"`
	To           string `json:"to"`
	KeysCopied   int    `json:"keys_copied"`
	KeysSkipped  int    `json:"keys_skipped"`
	UsageRows    int    `json:"usage_rows"`
	AuditEntries int    `json:"audit_entries"`
}

func migrateRun(opts *MigrateOptions) error {
	src, err := opts.Open(opts.Ctx, opts.From, false)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := opts.Open(opts.Ctx, opts.To, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	r, err := keystore.Copy(opts.Ctx, src, dst)
	if err != nil {
		return err
	}
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, migrateJSON{From: src.Addr(), To: dst.Addr(), KeysCopied: r.Keys,
			KeysSkipped: r.Skipped, UsageRows: r.Usage, AuditEntries: r.Audit})
	}
	_, err = fmt.Fprintf(opts.IO.Out, "Copied %d keys (%d already there), %d usage rows and %d audit entries from %s to %s.\n",
		r.Keys, r.Skipped, r.Usage, r.Audit, src.Addr(), dst.Addr())
	return err
}
