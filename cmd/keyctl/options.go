package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// cmdOptions are the inputs every verb that uses the key store shares: the
// streams, the clock, how to open the store, the global flags, and the key
// named on the command line. Each verb's Options embed them.
type cmdOptions struct {
	IO        *IOStreams
	Ctx       context.Context
	OpenStore func(context.Context) (*keystore.Store, error)
	Now       func() time.Time
	Format    outputFormat
	DBPath    string // --db as it may be shown: without a password

	Ref keyRef // the key the argument names; zero when there is none
}

// newCmdOptions returns the options f gives every verb, which opens the
// store with open.
func newCmdOptions(f *Factory, open func(context.Context) (*keystore.Store, error)) cmdOptions {
	return cmdOptions{IO: f.IO, OpenStore: open, Now: f.Now}
}

// bind completes o once cmd's flags are parsed: the context, the global
// flags, and the key args names, if it names one. A bad key reference is a
// usage error.
func (o *cmdOptions) bind(cmd *cobra.Command, f *Factory, args []string) error {
	if len(args) == 1 {
		ref, err := parseKeyRef(args[0])
		if err != nil {
			return err
		}
		o.Ref = ref
	}
	o.Ctx, o.Format, o.DBPath = cmd.Context(), f.format, keystore.Redacted(f.dbPath)
	return nil
}

// runVerb runs a verb with opts: runF if a test gave one, else run.
func runVerb[T any](opts *T, runF, run func(*T) error) error {
	if runF != nil {
		return runF(opts)
	}
	return run(opts)
}

// checkQuiet refuses --quiet with --output json: a verb prints either the
// bare key or JSON.
func (o *cmdOptions) checkQuiet(quiet bool) error {
	if quiet && o.Format == formatJSON {
		return usageErrorf("--quiet and --output json cannot be used together")
	}
	return nil
}

// openKey opens the store and finds the key o.Ref names in it, for the
// verbs that act on one key. The caller closes the store; on error it is
// closed.
func (o *cmdOptions) openKey() (*keystore.Store, keystore.Key, error) {
	s, err := o.OpenStore(o.Ctx)
	if err != nil {
		return nil, keystore.Key{}, err
	}
	k, err := o.lookUp(s)
	if err != nil {
		s.Close()
		return nil, keystore.Key{}, err
	}
	return s, k, nil
}

// lookUp returns the key o.Ref names (of a name, the key not revoked that
// has it, else the latest revoked one), or a not-found error that names the
// database, so a wrong --db is easy to spot. An unknown key is shown by its
// prefix only, so the message does not copy a secret into logs.
func (o *cmdOptions) lookUp(s *keystore.Store) (keystore.Key, error) {
	if o.Ref.Name != "" {
		k, err := s.GetByName(o.Ctx, o.Ref.Name)
		if errors.Is(err, keystore.ErrNotFound) {
			return k, notFoundErrorf("no key is named %q in %s", o.Ref.Name, o.DBPath)
		}
		return k, err
	}
	if o.Ref.Key == "" {
		k, err := s.Get(o.Ctx, o.Ref.ID)
		if errors.Is(err, keystore.ErrNotFound) {
			return k, notFoundErrorf("no key has id %d in %s", o.Ref.ID, o.DBPath)
		}
		return k, err
	}
	k, err := s.Find(o.Ctx, o.Ref.Key)
	if errors.Is(err, keystore.ErrUnknownKey) {
		return k, notFoundErrorf("no key %s in %s", shortKey(o.Ref.Key), o.DBPath)
	}
	return k, err
}

// writeKey prints k in JSON, or everything about it for a person: what
// show prints, and update after a change.
func (o *cmdOptions) writeKey(k keystore.Key) error {
	now := o.Now()
	if o.Format == formatJSON {
		return writeJSON(o.IO.Out, newKeyJSON(k, now))
	}
	return writeKeyDetails(o.IO.Out, k, now)
}

// report prints k in JSON, or else the sentence format and a say about it.
func (o *cmdOptions) report(k keystore.Key, format string, a ...any) error {
	if o.Format == formatJSON {
		return writeJSON(o.IO.Out, newKeyJSON(k, o.Now()))
	}
	_, err := fmt.Fprintf(o.IO.Out, format+"\n", a...)
	return err
}
