package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// IOStreams are the streams a command reads and writes, and whether each
// end is a terminal. Tests fake them with buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY  bool // In is a terminal, so keyctl may prompt
	OutTTY bool // Out is a terminal, so output is for a human
}

// systemIOStreams wraps the given streams, detecting terminals.
func systemIOStreams(in io.Reader, out, errOut io.Writer) *IOStreams {
	return &IOStreams{In: in, Out: out, ErrOut: errOut, InTTY: isTerminal(in), OutTTY: isTerminal(out)}
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Factory holds what every command needs: the streams, the clock, the
// environment and who is running keyctl, and the database and output format
// chosen by the global flags once they are parsed.
type Factory struct {
	IO     *IOStreams
	Now    func() time.Time
	Getenv func(string) string
	Actor  string // recorded in the key store's audit log; see actorName

	dbPath    string        // --db
	dbTimeout time.Duration // --db-timeout
	format    outputFormat  // --output
}

// createStore opens the key store at --db, creating a SQLite file if
// needed.
func (f *Factory) createStore(ctx context.Context) (*keystore.Store, error) {
	return f.openAddr(ctx, f.dbPath, true)
}

// openAddr opens the key store at addr, a SQLite file or a PostgreSQL
// URL, as keyctl: with its clock, its actor for the audit log, and
// --db-timeout for connecting. Unless create is set, a SQLite file that
// does not exist is an error rather than made, so a mistyped path is
// reported instead of leaving an empty database behind.
func (f *Factory) openAddr(ctx context.Context, addr string, create bool) (*keystore.Store, error) {
	if !create && !keystore.IsPostgres(addr) {
		if _, err := os.Stat(addr); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no key store at %s (set --db or KEYSTORE_DB)", addr)
		}
	}
	s, err := keystore.OpenWith(ctx, addr, keystore.Options{Timeout: f.dbTimeout, Name: "keyctl"})
	if err != nil {
		return nil, err
	}
	s.Now = f.Now
	if f.Actor != "" {
		s.Actor = f.Actor
	}
	return s, nil
}

// actorName is who keyctl says is making changes, for the audit log:
// "keyctl:" + user + "@" + host. The user comes from the system, else from
// $USER; anything unknown is "unknown".
func actorName(username, hostname func() (string, error), getenv func(string) string) string {
	who, err := username()
	if err != nil || who == "" {
		who = getenv("USER")
	}
	if who == "" {
		who = "unknown"
	}
	host, err := hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "keyctl:" + who + "@" + host
}

// currentUsername is the login name of the user running keyctl.
func currentUsername() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// openStore opens the existing key store at --db. Commands that only read
// or revoke keys use it, so a mistyped path is reported instead of leaving
// an empty database behind.
func (f *Factory) openStore(ctx context.Context) (*keystore.Store, error) {
	return f.openAddr(ctx, f.dbPath, false)
}

// keyRef names a key on the command line: by id, by its value, or by its
// name.
type keyRef struct {
	ID   int64
	Key  string
	Name string
}

// parseKeyRef reads an argument that is a key id (an integer), a key (a
// UUID, kept in canonical form) or a key's name; keystore.CheckName keeps
// the three apart.
func parseKeyRef(arg string) (keyRef, error) {
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil {
		if id <= 0 {
			return keyRef{}, usageErrorf("invalid key id %d: ids are positive", id)
		}
		return keyRef{ID: id}, nil
	}
	if u, err := uuid.Parse(arg); err == nil {
		return keyRef{Key: u.String()}, nil
	}
	if err := keystore.CheckName(arg, "a name"); err != nil {
		return keyRef{}, usageErrorf("%q is neither a key id, a key nor a key's name (lower-case letters, digits, '-', '_' and '.')", arg)
	}
	return keyRef{Name: arg}, nil
}

// shortKey is the start of a key value, enough to recognise it.
func shortKey(key string) string {
	if len(key) > keystore.PrefixLen {
		key = key[:keystore.PrefixLen]
	}
	return key + "…"
}

// confirm asks question on ErrOut and reads the answer from In. Only "y"
// or "yes" (any case) is a yes; end of input is a no.
func confirm(ios *IOStreams, question string) (bool, error) {
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", question)
	answer, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read answer: %w", err)
	}
	if errors.Is(err, io.EOF) && answer == "" {
		fmt.Fprintln(ios.ErrOut)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
