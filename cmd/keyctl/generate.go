package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// GenerateOptions are the inputs of keyctl generate.
type GenerateOptions struct {
	IO        *IOStreams
	Ctx       context.Context
	OpenStore func(context.Context) (*keystore.Store, error)
	Now       func() time.Time
	Format    outputFormat

	Hostname     string
	Description  string
	ExpiresAt    time.Time // zero: never
	Scopes       []string  // nil: the store's default, submit
	Measurements []string  // nil: any
	Rate         float64   // 0: the server's default
	Burst        int       // 0: the server's default
	Quiet        bool
}

// NewCmdGenerate returns the generate command. runF, if not nil, replaces
// generateRun, so tests can see the parsed options.
func NewCmdGenerate(f *Factory, runF func(*GenerateOptions) error) *cobra.Command {
	opts := &GenerateOptions{IO: f.IO, OpenStore: f.createStore, Now: f.Now}
	var policy policyFlags
	cmd := &cobra.Command{
		Use:   "generate --hostname HOST",
		Short: "Generate a key for a host",
		Long: `Generate a new API key bound to one host: an IP address, a CIDR range or a
DNS name. Requests with the key are accepted only from that host.

By default a key never expires, carries the submit scope, may write any
measurement, and is rate-limited by the server's defaults. The flags set
a different policy; keyctl update changes it later.

The key is printed once and cannot be shown again; store it now. With
--quiet only the key is printed, for scripts.`,
		Example: `  $ keyctl generate --hostname web-1.example.com --description "web one"
  $ KEY=$(keyctl generate --hostname 10.0.0.0/24 --quiet)
  $ keyctl generate --hostname 10.0.0.7 --expires-in 720h --measurement cpu --measurement mem
  $ keyctl generate --hostname admin-1 --scope submit --scope admin --rate 50 --burst 200`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("hostname") {
				return usageErrorf("--hostname is required")
			}
			if strings.TrimSpace(opts.Hostname) == "" {
				return usageErrorf("--hostname must not be empty")
			}
			opts.Ctx = cmd.Context()
			opts.Format = f.format
			if opts.Quiet && opts.Format == formatJSON {
				return usageErrorf("--quiet and --output json cannot be used together")
			}
			u, err := policy.resolve(cmd, opts.Now())
			if err != nil {
				return err
			}
			opts.Description = policy.description
			if u.ExpiresAt != nil {
				opts.ExpiresAt = *u.ExpiresAt
			}
			if u.Scopes != nil {
				opts.Scopes = *u.Scopes
			}
			if u.Measurements != nil {
				opts.Measurements = *u.Measurements
			}
			if u.Rate != nil {
				opts.Rate = *u.Rate
			}
			if u.Burst != nil {
				opts.Burst = *u.Burst
			}
			if runF != nil {
				return runF(opts)
			}
			return generateRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Hostname, "hostname", "", "`host` that may use the key: IP address, CIDR range or DNS name (required)")
	addPolicyFlags(cmd, &policy, false)
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the key")
	return cmd
}

func generateRun(opts *GenerateOptions) error {
	// Check what the store would reject before opening, which would create
	// the database.
	if _, err := keystore.CanonicalHostname(opts.Hostname); err != nil {
		return err
	}
	if err := keystore.CheckDescription(opts.Description); err != nil {
		return err
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	k, plain, err := s.Generate(opts.Ctx, keystore.NewKey{
		Hostname:     opts.Hostname,
		Description:  opts.Description,
		Scopes:       opts.Scopes,
		Measurements: opts.Measurements,
		Rate:         opts.Rate,
		Burst:        opts.Burst,
		ExpiresAt:    opts.ExpiresAt,
	})
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
