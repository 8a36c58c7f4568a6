package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// Exit codes. Scripts rely on them, so they only ever gain new values.
const (
	exitOK       = 0 // success
	exitError    = 1 // any other failure, such as an invalid hostname or an unreadable database
	exitUsage    = 2 // bad flags or arguments, such as a key policy the store refuses
	exitNotFound = 3 // no key has the given id or value, or a host has no active key
)

// exitCodesHelp documents the exit codes in keyctl's help.
var exitCodesHelp = fmt.Sprintf(`Exit codes:
  %d  success
  %d  error (invalid hostname, unreadable database, revocation declined, ...)
  %d  usage error (bad flags or arguments, or --yes missing when not interactive)
  %d  not found (no key has the given id or value, or the host has no active key)`,
	exitOK, exitError, exitUsage, exitNotFound)

// cliError is an error that chooses keyctl's exit code.
type cliError struct {
	code int
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usageErrorf reports bad flags or arguments; keyctl prints the command's
// usage after it.
func usageErrorf(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// notFoundErrorf reports that the key asked for does not exist.
func notFoundErrorf(format string, a ...any) error {
	return &cliError{code: exitNotFound, err: fmt.Errorf(format, a...)}
}

// flagError turns cobra's flag parsing errors into usage errors.
func flagError(_ *cobra.Command, err error) error {
	return &cliError{code: exitUsage, err: err}
}

// exitCode maps an error returned by a command to keyctl's exit code.
func exitCode(err error) int {
	var ce *cliError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrUnknownKey):
		return exitNotFound
	case errors.Is(err, keystore.ErrInvalidPolicy), errors.Is(err, keystore.ErrInvalidScope):
		// keystore.ParsePolicy checked the flags: a usage error.
		return exitUsage
	}
	return exitError
}
