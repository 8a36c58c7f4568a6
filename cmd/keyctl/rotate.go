package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// RotateOptions are the inputs of keyctl rotate.
type RotateOptions struct {
	cmdOptions

	Grace time.Duration
	Quiet bool
}

// defaultGrace is how long a rotated key keeps working unless --grace says
// otherwise: long enough to redeploy a client's configuration.
const defaultGrace = 24 * time.Hour

// NewCmdRotate returns the rotate command. runF, if not nil, replaces
// rotateRun.
func NewCmdRotate(f *Factory, runF func(*RotateOptions) error) *cobra.Command {
	opts := &RotateOptions{cmdOptions: newCmdOptions(f, f.openStore)}
	cmd := &cobra.Command{
		Use:   "rotate {ID | KEY | NAME} [--grace DURATION]",
		Short: "Replace a key by a new one",
		Long: `Generate a new key for the same host, with the same policy, to replace an
active key named by its id or by the key itself. The old key keeps working
for the grace period (24h unless --grace says otherwise), so clients can
switch to the new one; with --grace 0 it stops at once. The old key never
works longer than it would have, and the new key keeps its expiry time, if
it had one (keyctl update changes it).

The new key is printed once and cannot be shown again; store it now. With
--quiet only the new key is printed, for scripts.`,
		Example: `  $ keyctl rotate 7
  $ keyctl rotate 7 --grace 1h
  $ NEW=$(keyctl rotate "$OLD" --grace 0 --quiet)`,
		Args: oneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.bind(cmd, f, args); err != nil {
				return err
			}
			if err := keystore.CheckGrace(opts.Grace, "--grace"); err != nil {
				return err
			}
			if err := opts.checkQuiet(opts.Quiet); err != nil {
				return err
			}
			return runVerb(opts, runF, rotateRun)
		},
	}
	cmd.Flags().DurationVar(&opts.Grace, "grace", defaultGrace, "how long the old key keeps working, such as 1h; 0 stops it at once")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the new key")
	return cmd
}

func rotateRun(opts *RotateOptions) error {
	s, k, err := opts.openKey()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkRotatable(k, opts.Now()); err != nil {
		return err
	}
	nk, plain, old, err := s.Rotate(opts.Ctx, k.ID, opts.Grace)
	if errors.Is(err, keystore.ErrRevoked) || errors.Is(err, keystore.ErrExpired) {
		// Revoked or expired since we looked: say so as clearly.
		if k, gerr := s.Get(opts.Ctx, k.ID); gerr == nil {
			if cerr := checkRotatable(k, opts.Now()); cerr != nil {
				return cerr
			}
		}
	}
	if err != nil {
		return err
	}

	out := opts.IO.Out
	now := opts.Now()
	switch {
	case opts.Quiet:
		_, err = fmt.Fprintln(out, plain)
		return err
	case opts.Format == formatJSON:
		return writeJSON(out, keyjson.NewRotated(nk, plain, old, now))
	}
	if _, err := fmt.Fprintf(out, "Generated %s to replace key %d.\n\n    %s\n\nStore this key now: it will not be shown again.\n",
		describeKey(nk), old.ID, plain); err != nil {
		return err
	}
	if !nk.ExpiresAt.IsZero() {
		// The new key keeps the old one's expiry; say so, as generate does.
		if _, err := fmt.Fprintf(out, "It expires at %s.\n", formatTime(nk.ExpiresAt)); err != nil {
			return err
		}
	}
	if !old.ExpiresAt.After(now) {
		_, err = fmt.Fprintf(out, "Key %d has stopped working.\n", old.ID)
	} else {
		_, err = fmt.Fprintf(out, "Key %d keeps working until %s.\n", old.ID, formatTime(old.ExpiresAt))
	}
	return err
}

// checkRotatable explains why k, at now, cannot be rotated, or returns nil.
func checkRotatable(k keystore.Key, now time.Time) error {
	switch k.Status(now) {
	case keystore.StatusRevoked:
		return fmt.Errorf("cannot rotate %s: it was revoked at %s; only an active key can be rotated (generate a new one instead)",
			describeKey(k), formatTime(k.RevokedAt))
	case keystore.StatusExpired:
		return fmt.Errorf("cannot rotate %s: it expired at %s; only an active key can be rotated (generate a new one instead)",
			describeKey(k), formatTime(k.ExpiresAt))
	}
	return nil
}
