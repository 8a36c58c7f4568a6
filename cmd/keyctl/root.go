package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// run is the whole program: main only supplies the process's arguments,
// environment and streams, so tests run the same code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := &Factory{IO: systemIOStreams(stdin, stdout, stderr), Now: time.Now, Getenv: getenv,
		Actor: actorName(currentUsername, os.Hostname, getenv)}
	return execute(ctx, f, args)
}

// execute runs keyctl with args and returns its exit code. Errors are
// printed here, once, as one line on ErrOut; usage errors are followed by
// the command's usage.
func execute(ctx context.Context, f *Factory, args []string) int {
	root := NewCmdRoot(f)
	if args == nil {
		args = []string{} // cobra reads os.Args when args are nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "keyctl: %s\n", err)
		if printsUsage(err) {
			fmt.Fprintf(f.IO.ErrOut, "\n%s", cmd.UsageString())
		}
	}
	return code
}

// rootLong is the start of keyctl's help; the exit codes follow it.
const rootLong = `Manage the API keys metricgate's apiserver accepts.

A key is a UUID bound to the host that may use it: an IP address, a CIDR
range or a DNS name. The key store keeps only a hash of each key, so a key
is shown once, when it is generated, and never again.

A key may expire, be limited to some measurements, to a rate of points
per second and to a number of series per hour, write to a bucket of its
own, and carry the submit or admin scope. update changes that policy;
rotate replaces a key by a new one and lets the old one work a while longer.
A key whose points InfluxDB keeps refusing is quarantined by the
apiservers until release lets it write again; dead-letters shows and
replays the points InfluxDB refused. Every change is recorded, with who
made it, in an audit log (keyctl audit).

The key store is a SQLite file, or a PostgreSQL database that several
apiservers share (--db postgres://user:password@host:port/db), chosen by
--db or the KEYSTORE_DB environment variable, else api_keys.db in the
current directory. keyctl may change it while apiservers run: they see a
change within a second. keyctl migrate copies every key from one store to
another.

Output is a table for people (tab-separated lines without a header when
standard output is not a terminal), or JSON with --output json. Times are
in UTC.

`

// NewCmdRoot returns the keyctl command with every verb below it.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyctl",
		Short: "Manage metricgate API keys",
		Long:  rootLong + exitCodesHelp,
		Example: `  $ keyctl generate --hostname web-1.example.com --description "web one"
  $ KEY=$(keyctl generate --hostname 10.0.0.7 --expires-in 720h --quiet)
  $ keyctl list --all -o json
  $ keyctl list --expiring 168h
  $ keyctl update 7 --rate 100 --burst 500
  $ keyctl rotate 7 --grace 1h
  $ keyctl revoke 7
  $ keyctl revoke --hostname web-1.example.com --yes
  $ keyctl release 7
  $ keyctl dead-letters list --spool-dir /var/lib/metricgate/spool
  $ keyctl audit 7
  $ keyctl apply -f keys.yaml --dry-run
  $ keyctl export > keys.yaml
  $ keyctl migrate --from api_keys.db --to postgres://metricgate:PASSWORD@db.example.com/metricgate`,
		// Verbs are subcommands; anything else is a mistyped verb.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q", args[0])
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += fmt.Sprintf("; did you mean %q?", s[0])
				}
				return usageErrorf("%s", msg)
			}
			return cmd.Help()
		},
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
	}
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.SetFlagErrorFunc(flagError)
	addGlobalFlags(cmd, f)

	cmd.AddCommand(
		NewCmdGenerate(f, nil),
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdUpdate(f, nil),
		NewCmdRotate(f, nil),
		NewCmdRevoke(f, nil),
		NewCmdRelease(f, nil),
		NewCmdDeadLetters(f),
		NewCmdAudit(f, nil),
		NewCmdMigrate(f, nil),
		NewCmdApply(f, nil),
		NewCmdExport(f, nil),
		NewCmdImport(f, nil),
		NewCmdVersion(f, nil),
	)
	return cmd
}

// addGlobalFlags adds --db, --db-timeout and --output to cmd, for it and every command
// below it, storing their values in f.
func addGlobalFlags(cmd *cobra.Command, f *Factory) {
	db := "api_keys.db"
	if env := f.Getenv("KEYSTORE_DB"); env != "" {
		db = env
	}
	f.dbPath = db
	f.format = formatTable
	flags := cmd.PersistentFlags()
	flags.StringVar(&f.dbPath, "db", db, "key store: a SQLite file `path`, or a postgres:// URL (env KEYSTORE_DB)")
	flags.DurationVar(&f.dbTimeout, "db-timeout", 5*time.Second, "how long to wait for PostgreSQL to answer when connecting")
	flags.VarP(&f.format, "output", "o", "output `format`: table or json")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{string(formatTable), string(formatJSON)}, cobra.ShellCompDirectiveNoFileComp))
}

// oneKey is the Args of the verbs that act on one key, named by its id,
// by the key itself or by its name.
func oneKey(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%s takes one key id, key or name, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}
