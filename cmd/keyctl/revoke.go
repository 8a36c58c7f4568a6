package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// errDeclined means the user answered no to the confirmation prompt.
var errDeclined = errors.New("nothing revoked")

// RevokeOptions are the inputs of keyctl revoke: one key by Ref, or every
// active key of Hostname.
type RevokeOptions struct {
	cmdOptions

	Hostname string
	Yes      bool
}

// NewCmdRevoke returns the revoke command. runF, if not nil, replaces
// revokeRun.
func NewCmdRevoke(f *Factory, runF func(*RevokeOptions) error) *cobra.Command {
	opts := &RevokeOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "revoke {ID | KEY | NAME | --hostname HOST}",
		Short: "Revoke a key, or every key of a host",
		Long: `Revoke one key, named by its id, by the key itself or by its name, or with --hostname
every active key bound to a host. A revoked key is refused at once, also by
a running apiserver; its record is kept.

keyctl asks before revoking. When standard input is not a terminal there is
no one to ask, and --yes is required.`,
		Example: `  $ keyctl revoke 7
  $ keyctl revoke "$KEY" --yes
  $ keyctl revoke --hostname web-1.example.com --yes -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			hostname := cmd.Flags().Changed("hostname")
			switch {
			case len(args) > 1:
				return usageErrorf("revoke takes one key id, key or name, got %d arguments", len(args))
			case len(args) == 1 && hostname:
				return usageErrorf("give a key id, a key, a name or --hostname, not both")
			case len(args) == 0 && !hostname:
				return usageErrorf("give a key id, a key, a name or --hostname")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if len(args) == 0 && strings.TrimSpace(opts.Hostname) == "" {
				return usageErrorf("--hostname must not be empty")
			}
			if !opts.IO.InTTY && !opts.Yes {
				return usageErrorf("--yes is required when not running interactively")
			}
			return runVerb(opts, runF, revokeRun)
		},
	}
	cmd.Flags().StringVar(&opts.Hostname, "hostname", "", "revoke every active key bound to `host`")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "revoke without asking")
	return cmd
}

func revokeRun(opts *RevokeOptions) error {
	// A hostname keys cannot be made for may still be on keys imported
	// from the original database, so it is looked up as typed; if no key
	// has it, the error says why it is probably a typo.
	var invalidHost error
	if opts.Hostname != "" {
		if host, err := keystore.CanonicalHostname(opts.Hostname); err == nil {
			opts.Hostname = host
		} else {
			invalidHost = err
		}
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if opts.Hostname != "" {
		return revokeHost(opts, s, invalidHost)
	}

	k, err := opts.lookUp(s)
	if err != nil {
		return err
	}
	if k.Status(opts.Now()) == keystore.StatusRevoked {
		// Revoking again changes nothing; say so rather than ask.
		return opts.report(k, "%s was already revoked at %s.", capitalize(describeKey(k)), formatTime(k.RevokedAt))
	}
	if !opts.Yes {
		ok, err := confirm(opts.IO, fmt.Sprintf("Revoke %s?", describeKey(k)))
		if err != nil {
			return err
		}
		if !ok {
			return errDeclined
		}
	}
	if k, err = s.Revoke(opts.Ctx, k.ID); err != nil {
		return err
	}
	return opts.report(k, "Revoked %s.", describeKey(k))
}

// revokeHost revokes every active key of opts.Hostname. In JSON it prints
// an array of the revoked keys. invalidHost, if not nil, is why the
// hostname is not valid, returned when no key has it.
func revokeHost(opts *RevokeOptions, s *keystore.Store, invalidHost error) error {
	active, err := s.List(opts.Ctx, keystore.Filter{Hostname: opts.Hostname})
	if err != nil {
		return err
	}
	if len(active) == 0 {
		if invalidHost != nil {
			return invalidHost
		}
		return notFoundErrorf("host %s has no active keys in %s", printable(opts.Hostname), opts.DBPath)
	}
	if !opts.Yes {
		ids := make([]string, len(active))
		for i, k := range active {
			ids[i] = fmt.Sprintf("%d (%s…)", k.ID, printable(k.Prefix))
		}
		host := printable(opts.Hostname)
		q := fmt.Sprintf("Revoke key %s of host %s?", ids[0], host)
		if len(active) > 1 {
			q = fmt.Sprintf("Revoke all %d active keys of host %s: %s?", len(active), host, strings.Join(ids, ", "))
		}
		ok, err := confirm(opts.IO, q)
		if err != nil {
			return err
		}
		if !ok {
			return errDeclined
		}
	}
	revoked, err := s.RevokeHost(opts.Ctx, opts.Hostname)
	if err != nil {
		return err
	}
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, newKeysJSON(revoked, opts.Now()))
	}
	for _, k := range revoked {
		if _, err := fmt.Fprintf(opts.IO.Out, "Revoked %s.\n", describeKey(k)); err != nil {
			return err
		}
	}
	return nil
}

// capitalize upper-cases the first letter of an ASCII sentence.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
