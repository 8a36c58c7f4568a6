package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// GenerateOptions are the inputs of keyctl generate: one key for Key's
// host, or one key for each host HostnameFile lists, each with Key's
// policy.
type GenerateOptions struct {
	cmdOptions

	Key          keystore.NewKey // the host and the policy the flags ask for
	HostnameFile string          // --hostname-file: "" for one key, "-" for standard input
	Quiet        bool
}

// NewCmdGenerate returns the generate command. runF, if not nil, replaces
// generateRun, so tests can see the parsed options.
func NewCmdGenerate(f *Factory, runF func(*GenerateOptions) error) *cobra.Command {
	opts := &GenerateOptions{cmdOptions: newCmdOptions(f, f.createStore)}
	var (
		hostname string
		policy   policyFlags
	)
	cmd := &cobra.Command{
		Use:   "generate {--hostname HOST | --hostname-file FILE}",
		Short: "Generate a key for a host, or one for each host of a file",
		Long: `Generate a new API key bound to one host: an IP address, a CIDR range or a
DNS name. Requests with the key are accepted only from that host.

By default a key never expires, carries the submit scope, may write any
measurement, and is rate-limited by the server's defaults. The flags set
a different policy; keyctl update changes it later. --name gives the key a
unique name, by which keyctl and keyctl apply know it.

With --hostname-file, one key is made for each line of the file ("-" for
standard input), with the policy the flags set, all in one transaction: all
of them or, if any line is at fault, none. A line is a host, or a host and
a name for its key; blank lines and lines starting with # are skipped.

A key is printed once and cannot be shown again; store it now. With
--quiet only the key is printed (one per line with --hostname-file, in the
file's order), for scripts; -o json prints the key with its value, or an
array of them.`,
		Example: `  $ keyctl generate --hostname web-1.example.com --description "web one"
  $ KEY=$(keyctl generate --hostname 10.0.0.0/24 --quiet)
  $ keyctl generate --hostname 10.0.0.7 --expires-in 720h --measurement cpu --measurement mem
  $ keyctl generate --hostname admin-1 --scope submit --scope admin --rate 50 --burst 200
  $ keyctl generate --hostname web-1 --name web-1-telegraf
  $ keyctl generate --hostname-file hosts.txt --rate 100 -o json > new-keys.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkGenerateHosts(cmd, hostname, opts.HostnameFile); err != nil {
				return err
			}
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if err := opts.checkQuiet(opts.Quiet); err != nil {
				return err
			}
			u, err := keystore.ParsePolicy(policy.input(cmd), opts.Now())
			if err != nil {
				return err
			}
			opts.Key = u.NewKey(hostname)
			return runVerb(opts, runF, generateRun)
		},
	}
	cmd.Flags().StringVar(&hostname, "hostname", "", "`host` that may use the key: IP address, CIDR range or DNS name")
	cmd.Flags().StringVar(&opts.HostnameFile, "hostname-file", "", "make one key per line of `file`: HOST or HOST NAME (- for standard input)")
	addPolicyFlags(cmd, &policy, false)
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the key")
	return cmd
}

// checkGenerateHosts checks that cmd was given --hostname or
// --hostname-file, and not both.
func checkGenerateHosts(cmd *cobra.Command, hostname, file string) error {
	fl := cmd.Flags()
	switch {
	case fl.Changed("hostname-file") && fl.Changed("hostname"):
		return usageErrorf("--hostname and --hostname-file cannot be used together")
	case fl.Changed("hostname-file") && fl.Changed("name"):
		return usageErrorf("--name names one key: with --hostname-file, give each host's name on its line")
	case fl.Changed("hostname-file"):
		if strings.TrimSpace(file) == "" {
			return usageErrorf("--hostname-file must not be empty")
		}
		return nil
	case !fl.Changed("hostname"):
		return usageErrorf("--hostname or --hostname-file is required")
	case strings.TrimSpace(hostname) == "":
		return usageErrorf("--hostname must not be empty")
	}
	return nil
}

func generateRun(opts *GenerateOptions) error {
	if opts.HostnameFile != "" {
		return generateManyRun(opts)
	}
	// Check the hostname before opening, which would create the database;
	// the policy was checked with the flags.
	if _, err := keystore.CanonicalHostname(opts.Key.Hostname); err != nil {
		return err
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	k, plain, err := s.Generate(opts.Ctx, opts.Key)
	if err != nil {
		return err
	}

	out := opts.IO.Out
	switch {
	case opts.Quiet:
		_, err = fmt.Fprintln(out, plain)
		return err
	case opts.Format == formatJSON:
		return writeJSON(out, generatedJSON{Key: newKeyJSON(k, opts.Now()), Value: plain})
	}
	if _, err = fmt.Fprintf(out, "Generated %s.\n\n    %s\n\nStore this key now: it will not be shown again.\n",
		describeKey(k), plain); err != nil {
		return err
	}
	if !k.ExpiresAt.IsZero() {
		_, err = fmt.Fprintf(out, "It expires at %s.\n", formatTime(k.ExpiresAt))
	}
	return err
}
