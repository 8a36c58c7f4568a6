package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// AuditOptions are the inputs of keyctl audit.
type AuditOptions struct {
	cmdOptions

	Limit int // 0: no limit
}

// defaultAuditLimit is how many entries audit shows unless --limit says
// otherwise.
const defaultAuditLimit = 50

// NewCmdAudit returns the audit command. runF, if not nil, replaces
// auditRun.
func NewCmdAudit(f *Factory, runF func(*AuditOptions) error) *cobra.Command {
	opts := &AuditOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "audit [ID | KEY | NAME] [--limit N]",
		Short: "Show who changed keys, and how",
		Long: `Show the audit log, newest first: every generate, update, rotate and revoke,
with when it happened, who did it (keyctl records "keyctl:USER@HOST") and
what changed. With a key id, key or name, only that key's entries are
shown.
Usage is not recorded here; keyctl show has a key's last use.

On a terminal the log is a table. Otherwise each entry is one line of
tab-separated fields without a header: time, actor, key id, action,
detail.`,
		Example: `  $ keyctl audit
  $ keyctl audit 7
  $ keyctl audit --limit 0 -o json | jq '.[] | select(.action == "revoke")'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("audit takes at most one key id, key or name, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if opts.Limit < 0 {
				return usageErrorf("--limit must be 0 (no limit) or more, got %d", opts.Limit)
			}
			return runVerb(opts, runF, auditRun)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "L", defaultAuditLimit, "show at most `N` entries; 0 shows all")
	return cmd
}

func auditRun(opts *AuditOptions) error {
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var keyID int64
	if opts.Ref != (keyRef{}) {
		k, err := opts.lookUp(s)
		if err != nil {
			return err
		}
		keyID = k.ID
	}
	entries, err := s.Audit(opts.Ctx, keyID, opts.Limit)
	if err != nil {
		return err
	}

	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, keyjson.Audit(entries))
	}
	keyField := func(e keystore.AuditEntry, none string) string {
		if e.KeyID == 0 {
			return none
		}
		return strconv.FormatInt(e.KeyID, 10)
	}
	// A change made through an apiserver names it, on PostgreSQL where
	// several share the store.
	actor := func(e keystore.AuditEntry) string {
		if e.Node == "" {
			return printable(e.Actor)
		}
		return printable(e.Actor + " via " + e.Node)
	}
	if !opts.IO.OutTTY {
		for _, e := range entries {
			fmt.Fprintf(opts.IO.Out, "%s\t%s\t%s\t%s\t%s\n", formatTime(e.At), actor(e), keyField(e, ""),
				printable(e.Action), printable(e.Detail))
		}
		return nil
	}
	if len(entries) == 0 {
		msg := "No audit entries."
		if keyID != 0 {
			msg = fmt.Sprintf("No audit entries for key %d.", keyID)
		}
		fmt.Fprintln(opts.IO.ErrOut, msg)
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tKEY\tACTION\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatTime(e.At), actor(e), keyField(e, "-"),
			printable(e.Action), printable(e.Detail))
	}
	return tw.Flush()
}
