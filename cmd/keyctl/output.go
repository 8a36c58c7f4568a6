package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// outputFormat is the value of --output. Set rejects anything but table or
// json, so a bad value is a flag error.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }

func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case formatTable, formatJSON:
		*o = f
		return nil
	}
	return fmt.Errorf("want %q or %q", formatTable, formatJSON)
}

// keyJSON is how every command shows a key in JSON: keyjson's view, which
// the admin API answers with too. It has no field for the key's value, so no
// command can print one by mistake; generate and rotate, the only commands
// that know the value, use generatedJSON and keyjson.Rotated.
type keyJSON = keyjson.Key

// generatedJSON is a new key together with its value.
type generatedJSON = keyjson.Generated

// newKeyJSON converts k, with its status at now. Times are RFC 3339 in UTC;
// a time that is not set is null.
func newKeyJSON(k keystore.Key, now time.Time) keyJSON { return keyjson.New(k, now) }

// newKeysJSON converts keys; the result is never nil, so it encodes as [].
func newKeysJSON(keys []keystore.Key, now time.Time) []keyJSON { return keyjson.List(keys, now) }

// writeKeyDetails writes everything about k, one "Field: value" line each,
// with its status at now: what show prints, and update after a change.
func writeKeyDetails(w io.Writer, k keystore.Key, now time.Time) error {
	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	rate, burst := "server default", "server default"
	if k.Rate != 0 {
		rate = strconv.FormatFloat(k.Rate, 'f', -1, 64) + " points/s"
	}
	if k.Burst != 0 {
		burst = strconv.Itoa(k.Burst) + " points"
	}
	lastUsed := orNone(formatTime(k.LastUsedAt), "never")
	if k.LastUsedAddr != "" {
		lastUsed += " from " + printable(k.LastUsedAddr)
	}
	replacedBy := "-"
	if k.ReplacedBy != 0 {
		replacedBy = strconv.FormatInt(k.ReplacedBy, 10)
	}
	bucket, maxSeries, quarantined := "the gateway's", "server default", "no"
	if k.Bucket != "" {
		bucket = printable(k.Bucket)
	}
	if k.MaxSeries != 0 {
		maxSeries = strconv.Itoa(k.MaxSeries) + " per hour"
	}
	if k.Quarantined() {
		quarantined = "since " + formatTime(k.QuarantinedAt) + ": " + printable(k.QuarantineReason)
	}
	fields := []struct{ name, value string }{
		{"ID", strconv.FormatInt(k.ID, 10)},
		{"Name", orNone(printable(k.Name), "-")},
		{"Prefix", shownPrefix(k)},
		{"Hostname", printable(k.Hostname)},
		{"Description", orNone(printable(k.Description), "-")},
		{"Status", string(k.Status(now))},
		{"Scopes", printable(strings.Join(k.Scopes, ", "))},
		{"Measurements", orNone(printable(strings.Join(k.Measurements, ", ")), "any")},
		{"Rate", rate},
		{"Burst", burst},
		{"Bucket", bucket},
		{"Max series", maxSeries},
		{"Created", formatTime(k.CreatedAt)},
		{"Revoked", orNone(formatTime(k.RevokedAt), "-")},
		{"Expires", orNone(formatTime(k.ExpiresAt), "never")},
		{"Replaced by", replacedBy},
		{"Last used", lastUsed},
		{"Requests", strconv.FormatInt(k.Requests, 10)},
		{"Points", strconv.FormatInt(k.Points, 10)},
		{"Managed by", managedBy(k.ManagedBy)},
		{"Quarantined", quarantined},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// managedBy says what made a key and manages it, for a person.
func managedBy(m string) string {
	switch m {
	case keystore.ManagedByApply:
		return "keyctl apply (apply --prune revokes it when its file no longer names it)"
	case keystore.ManagedByHTTP:
		return "the admin API (PUT /admin/api/keys/by-name/NAME)"
	case keystore.ManagedByImport:
		return "keyctl import"
	case "":
		return "-"
	}
	return printable(m)
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatTime is t in RFC 3339, UTC, or "" when t is not set.
func formatTime(t time.Time) string { return keyjson.Time(t) }

// describeKey names a key in a sentence: key 7 (3f1c2a4b…, host web-1),
// or key 2 (legacy, host web-1).
func describeKey(k keystore.Key) string {
	prefix := shownPrefix(k)
	if !k.Legacy() {
		prefix += "…"
	}
	return fmt.Sprintf("key %d (%s, host %s)", k.ID, prefix, printable(k.Hostname))
}

// printable replaces control characters, such as tabs, newlines and
// terminal escapes, with spaces, so stored text cannot break a table or
// drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
