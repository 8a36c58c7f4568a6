// Package keyfile reads and writes the files that keep keys as code: a
// YAML or JSON document whose "keys" list names each key with its host
// binding and policy, as keyctl apply, export and import take them, and
// one such entry alone, as the admin API's PUT by name takes it.
//
// The file never holds a key's value. keyctl export --with-hashes adds each
// key's SHA-256, for keyctl import on another store, and such a file must
// be kept as safe as the store itself.
//
// Reading is strict, so that a typing mistake cannot turn into a key
// nobody asked for: a file that does not parse, an unknown field, a value
// of the wrong type, a field given twice, is an error that names the line
// and column, and the entry by its name.
package keyfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// ErrInvalid means a key file, or an entry, cannot be used: it does not
// parse, or holds a field, a value or a key that cannot be. Its messages
// name where: the source, line and column, and the entry.
var ErrInvalid = errors.New("invalid key file")

// Entry is one key of a key file, as written and before it is checked. A
// nil field was not given.
type Entry struct {
	Name         string
	Hostname     string
	Description  *string
	Scopes       *[]string
	Measurements *[]string // [] means any measurement, as absent does
	Rate         *float64
	Burst        *int
	Bucket       *string // the key's own bucket; absent means the gateway's
	MaxSeries    *int    // the key's own series budget; absent means the gateway's
	ExpiresAt    *string // RFC 3339; absent means never
	Hash         string  // hex SHA-256, for keyctl import only
	Prefix       string  // the value's first characters, for keyctl import only

	// Line is where the entry starts in its file, from 1.
	Line int
}

// Fields are the fields an entry may have, in the order files show them.
var Fields = []string{"name", "hostname", "description", "scopes", "measurements", "rate", "burst",
	"bucket", "max_series", "expires_at", "prefix", "hash"}

// Parse reads a key file, YAML or JSON, whose keys are a list under
// "keys". src names the file in errors, such as "keys.yaml". Every error
// wraps ErrInvalid and names the line, and the column where it is known;
// Parse reports every entry at fault, not only the first.
func Parse(data []byte, src string) ([]Entry, error) {
	body, err := document(data, src)
	if err != nil {
		return nil, err
	}
	top, ok := mappingValues(body)
	if !ok {
		return nil, at(src, body, `a key file is a mapping with a "keys" list, such as "keys: []"`)
	}
	var list ast.Node
	for _, mv := range top {
		switch name, _ := keyName(mv); name {
		case "keys":
			list = mv.Value
		default:
			return nil, at(src, mv.Key, "unknown field %s: a key file has only \"keys\"", quoteKey(mv))
		}
	}
	if list == nil {
		return nil, at(src, body, `no "keys" list (write "keys: []" for none)`)
	}
	seq, ok := list.(*ast.SequenceNode)
	if !ok {
		return nil, at(src, list, `"keys" must be a list of keys, got %s`, describe(list))
	}
	var (
		entries = make([]Entry, 0, len(seq.Values))
		errs    errorList
	)
	for i, item := range seq.Values {
		e, err := decodeEntry(item, src, fmt.Sprintf("entry %d", i+1), true)
		errs.add(err)
		entries = append(entries, e)
	}
	if err := errs.err(src); err != nil {
		return nil, err
	}
	return entries, nil
}

// ParseEntry reads one entry alone, a JSON or YAML mapping such as the
// body of the admin API's PUT by name. Errors wrap ErrInvalid and name the
// line and column within data.
func ParseEntry(data []byte) (Entry, error) {
	const src = "the body"
	body, err := document(data, src)
	if err != nil {
		return Entry{}, err
	}
	return decodeEntry(body, src, "the key", false)
}

// document parses data and returns the body of its one document.
func document(data []byte, src string) (ast.Node, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, syntaxError(err, src)
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return nil, invalidf("%s is empty: want a mapping with a \"keys\" list (\"keys: []\" for none)", src)
	case 1:
		return docs[0].Body, nil
	}
	return nil, at(src, docs[1].Body, "a second document: a key file holds one")
}

// decodeEntry reads one entry from node, which what names in errors until
// its name is known. An entry needs a hostname, and a name if needName.
func decodeEntry(node ast.Node, src, what string, needName bool) (Entry, error) {
	e := Entry{Line: node.GetToken().Position.Line}
	values, ok := mappingValues(node)
	if ok && len(values) > 0 {
		e.Line = values[0].Key.GetToken().Position.Line
	}
	if !ok {
		return e, at(src, node, "%s must be a mapping of fields, got %s", what, describe(node))
	}
	for _, mv := range values {
		if name, _ := keyName(mv); name == "name" {
			if s, ok := text(mv.Value); ok {
				e.Name = s
				what = fmt.Sprintf("entry %q", s)
			}
		}
	}
	var errs errorList
	for _, mv := range values {
		errs.add(setField(&e, mv, src, what))
	}
	if needName && e.Name == "" && !errs.has() {
		errs.add(at(src, node, "%s has no \"name\": every key in a file is known by its name", what))
	}
	if e.Hostname == "" && !errs.has() {
		errs.add(at(src, node, "%s has no \"hostname\": the host that may use the key", what))
	}
	return e, errs.joined()
}

// setField stores the field mv holds in e.
func setField(e *Entry, mv *ast.MappingValueNode, src, what string) error {
	name, ok := keyName(mv)
	if !ok {
		return at(src, mv.Key, "%s: %s is not a field name (anchors, aliases and merges are not read)", what, mv.Key.String())
	}
	v := mv.Value
	if _, null := v.(*ast.NullNode); null {
		return nil // as if absent
	}
	wrong := func(want string) error {
		return at(src, v, "%s: %q must be %s, got %s", what, name, want, describe(v))
	}
	switch name {
	case "name", "hostname", "description", "bucket", "expires_at", "hash", "prefix":
		s, ok := text(v)
		if !ok {
			return wrong("text")
		}
		if err := checkText(name, s); err != nil {
			return at(src, v, "%s: %v", what, err)
		}
		setText(e, name, s)
	case "scopes", "measurements":
		l, ok := texts(v)
		if !ok {
			return wrong("a list of text, such as [a, b]")
		}
		if name == "scopes" {
			e.Scopes = &l
		} else {
			e.Measurements = &l
		}
	case "rate":
		f, ok := number(v)
		if !ok {
			return wrong("a number")
		}
		e.Rate = &f
	case "burst", "max_series":
		n, ok := whole(v)
		if !ok {
			return wrong("a whole number")
		}
		if name == "burst" {
			e.Burst = &n
		} else {
			e.MaxSeries = &n
		}
	case "expires_in":
		return at(src, mv.Key, "%s: unknown field \"expires_in\": a file says when a key expires, not how long from now: give \"expires_at\"", what)
	default:
		return at(src, mv.Key, "%s: unknown field %s; the fields are %s", what, quoteKey(mv), strings.Join(Fields, ", "))
	}
	return nil
}

// checkText checks the form of the fields whose form a file alone
// decides: a hash and a prefix.
func checkText(name, s string) error {
	switch name {
	case "hash":
		if _, err := hex.DecodeString(s); err != nil || len(s) != 2*sha256.Size {
			return fmt.Errorf("\"hash\" must be a SHA-256 in hex, %d digits 0-9 and a-f, got %d characters", 2*sha256.Size, len(s))
		}
	case "prefix":
		if _, err := hex.DecodeString(s); err != nil || len(s) != keystore.PrefixLen || strings.ToLower(s) != s {
			return fmt.Errorf("\"prefix\" must be the key's first %d characters, lower-case hex, got %q", keystore.PrefixLen, s)
		}
	}
	return nil
}

func setText(e *Entry, name, s string) {
	switch name {
	case "name":
		e.Name = s
	case "hostname":
		e.Hostname = s
	case "description":
		e.Description = &s
	case "bucket":
		e.Bucket = &s
	case "expires_at":
		e.ExpiresAt = &s
	case "hash":
		e.Hash = s
	case "prefix":
		e.Prefix = s
	}
}

// mappingValues returns the fields of a mapping node, block or flow.
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// keyName is the name of mv's key, if it is a plain or quoted string.
func keyName(mv *ast.MappingValueNode) (string, bool) {
	if s, ok := mv.Key.(*ast.StringNode); ok {
		return s.Value, true
	}
	return "", false
}

func quoteKey(mv *ast.MappingValueNode) string {
	if name, ok := keyName(mv); ok {
		return strconv.Quote(name)
	}
	return mv.Key.String()
}

// text returns the string n holds, if it is one.
func text(n ast.Node) (string, bool) {
	switch s := n.(type) {
	case *ast.StringNode:
		return s.Value, true
	case *ast.LiteralNode:
		return s.Value.Value, true
	}
	return "", false
}

// texts returns the strings of a list of strings.
func texts(n ast.Node) ([]string, bool) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(seq.Values))
	for _, v := range seq.Values {
		s, ok := text(v)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// number returns the number n holds, if it is one.
func number(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.FloatNode:
		return x.Value, true
	case *ast.IntegerNode:
		switch v := x.Value.(type) {
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		}
	}
	return 0, false
}

// whole returns the whole number n holds, if it is one an int can hold.
func whole(n ast.Node) (int, bool) {
	x, ok := n.(*ast.IntegerNode)
	if !ok {
		return 0, false
	}
	switch v := x.Value.(type) {
	case int64:
		if int64(int(v)) == v {
			return int(v), true
		}
	case uint64:
		if v <= uint64(math.MaxInt) {
			return int(v), true
		}
	}
	return 0, false
}

// describe shows a value as the file has it, for an error.
func describe(n ast.Node) string {
	s := n.String()
	if _, ok := n.(*ast.StringNode); ok && !strings.HasPrefix(s, `"`) && !strings.HasPrefix(s, "'") {
		s = strconv.Quote(s)
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strings.Join(strings.Fields(s), " ")
}
