package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// Exit codes. Scripts rely on them, so they only ever gain new values.
const (
	exitOK       = 0 // success
	exitError    = 1 // any other failure, such as an invalid hostname or an unreadable database
	exitUsage    = 2 // bad flags or arguments, such as a key policy the store refuses
	exitNotFound = 3 // no key has the given id, value or name, or a host has no active key
	exitChanged  = 4 // the key store changed between apply's plan and its transaction: nothing was written
)

// exitCodesHelp documents the exit codes in keyctl's help.
var exitCodesHelp = fmt.Sprintf(`Exit codes:
  %d  success
  %d  error (invalid hostname, unreadable database, revocation declined, ...)
  %d  usage error or invalid input (bad flags or arguments, --yes missing when
     not interactive, a key file or hosts file that cannot be used)
  %d  not found (no key has the given id, value or name, or the host has no active key)
  %d  the key store changed while apply ran: nothing was written; run it again`,
	exitOK, exitError, exitUsage, exitNotFound, exitChanged)

// cliError is an error that chooses keyctl's exit code.
type cliError struct {
	code  int
	err   error
	input bool // bad input from a file: the command's usage would not help
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// usageErrorf reports bad flags or arguments; keyctl prints the command's
// usage after it.
func usageErrorf(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// inputErrorf reports input, such as a file, that cannot be used: the
// usage error's exit code, without the usage.
func inputErrorf(format string, a ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, a...), input: true}
}

// printsUsage reports whether keyctl prints the command's usage after err:
// after a usage error that is about the command line.
func printsUsage(err error) bool {
	var ce *cliError
	if errors.As(err, &ce) && ce.input || errors.Is(err, keyfile.ErrInvalid) {
		return false
	}
	return exitCode(err) == exitUsage
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
	case errors.Is(err, keystore.ErrChanged):
		return exitChanged
	case errors.Is(err, keyfile.ErrInvalid):
		return exitUsage
	case errors.Is(err, keystore.ErrInvalidPolicy), errors.Is(err, keystore.ErrInvalidScope):
		// keystore.ParsePolicy checked the flags: a usage error.
		return exitUsage
	}
	return exitError
}
