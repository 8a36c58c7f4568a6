package keyfile

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// maxErrors is how many errors one read reports; the rest are counted.
const maxErrors = 20

// invalidError is ErrInvalid with a message that starts where the fault
// is, as compilers say it: "keys.yaml:4:5: ...".
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns ErrInvalid with the message format makes.
func invalidf(format string, a ...any) error { return &invalidError{fmt.Sprintf(format, a...)} }

// at returns ErrInvalid with a message that starts with where node is in
// src.
func at(src string, node ast.Node, format string, a ...any) error {
	tk := node.GetToken()
	if m, ok := node.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
		tk = m.Values[0].Key.GetToken() // not its first ':'
	} else if mv, ok := node.(*ast.MappingValueNode); ok {
		tk = mv.Key.GetToken()
	}
	return invalidf("%s: %s", where(src, tk), fmt.Sprintf(format, a...))
}

// where is the place of tk in src: "keys.yaml:4:5".
func where(src string, tk *token.Token) string {
	if tk == nil || tk.Position == nil {
		return src
	}
	return fmt.Sprintf("%s:%d:%d", src, tk.Position.Line, tk.Position.Column)
}

// locatedError is what the YAML library's errors have: the token at
// fault and the message without the position.
type locatedError interface {
	GetToken() *token.Token
	GetMessage() string
}

// syntaxError describes a failure to parse src, at its line and column.
func syntaxError(err error, src string) error {
	var le locatedError
	if errors.As(err, &le) {
		return invalidf("%s: %s", where(src, le.GetToken()), le.GetMessage())
	}
	return invalidf("%s: %v", src, err)
}

// errorList gathers the errors of a read, so that one run reports every
// entry at fault.
type errorList []error

func (l *errorList) add(err error) {
	if err != nil {
		*l = append(*l, err)
	}
}

func (l errorList) has() bool { return len(l) > 0 }

// joined returns the errors as one, a line each, or nil.
func (l errorList) joined() error { return errors.Join(l...) }

// err returns the errors as one, at most maxErrors of them, or nil.
func (l errorList) err(src string) error {
	if len(l) <= maxErrors {
		return l.joined()
	}
	more := invalidf("%s: %d more errors", src, len(l)-maxErrors)
	return errors.Join(append(l[:maxErrors:maxErrors], more)...)
}
