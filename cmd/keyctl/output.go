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

	"metricgate/pkg/keystore"
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

// keyJSON is how every command shows a key in JSON. It has no field for the
// key's value, so no command can print one by mistake; generate, the only
// command that knows the value, uses generatedJSON.
type keyJSON struct {
	ID           int64    `json:"id"`
	Prefix       string   `json:"prefix"`
	Hostname     string   `json:"hostname"`
	Description  string   `json:"description"`
	Scopes       []string `json:"scopes"`
	Measurements []string `json:"measurements"` // empty means any
	Rate         float64  `json:"rate"`         // points per second; 0 means the server's default
	Burst        int      `json:"burst"`        // 0 means the server's default
	Status       string   `json:"status"`
	CreatedAt    string   `json:"created_at"`
	RevokedAt    *string  `json:"revoked_at"`
	ExpiresAt    *string  `json:"expires_at"`
	ReplacedBy   *int64   `json:"replaced_by"`
	LastUsedAt   *string  `json:"last_used_at"`
	LastUsedAddr string   `json:"last_used_addr"`
	Requests     int64    `json:"requests"`
	Points       int64    `json:"points"`
}

// generatedJSON is a new key together with its value.
type generatedJSON struct {
	keyJSON
	Key string `json:"key"`
}

// rotatedJSON is a key made by rotate, with its value, and what became of
// the key it replaces.
type rotatedJSON struct {
	generatedJSON
	OldKeyID        int64  `json:"old_key_id"`
	OldKeyExpiresAt string `json:"old_key_expires_at"`
}

// auditJSON is how audit shows one entry.
type auditJSON struct {
	ID     int64  `json:"id"`
	At     string `json:"at"`
	Actor  string `json:"actor"`
	KeyID  *int64 `json:"key_id"` // null when the change concerned no single key
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// newKeyJSON converts k, with its status at now. Times are RFC 3339 in UTC;
// a time that is not set is null.
func newKeyJSON(k keystore.Key, now time.Time) keyJSON {
	j := keyJSON{
		ID:           k.ID,
		Prefix:       k.Prefix,
		Hostname:     k.Hostname,
		Description:  k.Description,
		Scopes:       nonNil(k.Scopes),
		Measurements: nonNil(k.Measurements),
		Rate:         k.Rate,
		Burst:        k.Burst,
		Status:       string(k.Status(now)),
		CreatedAt:    formatTime(k.CreatedAt),
		RevokedAt:    optionalTime(k.RevokedAt),
		ExpiresAt:    optionalTime(k.ExpiresAt),
		LastUsedAt:   optionalTime(k.LastUsedAt),
		LastUsedAddr: k.LastUsedAddr,
		Requests:     k.Requests,
		Points:       k.Points,
	}
	if k.ReplacedBy != 0 {
		j.ReplacedBy = &k.ReplacedBy
	}
	return j
}

// newKeysJSON converts keys; the result is never nil, so it encodes as [].
func newKeysJSON(keys []keystore.Key, now time.Time) []keyJSON {
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, newKeyJSON(k, now))
	}
	return out
}

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
	fields := []struct{ name, value string }{
		{"ID", strconv.FormatInt(k.ID, 10)},
		{"Prefix", printable(k.Prefix)},
		{"Hostname", printable(k.Hostname)},
		{"Description", orNone(printable(k.Description), "-")},
		{"Status", string(k.Status(now))},
		{"Scopes", printable(strings.Join(k.Scopes, ", "))},
		{"Measurements", orNone(printable(strings.Join(k.Measurements, ", ")), "any")},
		{"Rate", rate},
		{"Burst", burst},
		{"Created", formatTime(k.CreatedAt)},
		{"Revoked", orNone(formatTime(k.RevokedAt), "-")},
		{"Expires", orNone(formatTime(k.ExpiresAt), "never")},
		{"Replaced by", replacedBy},
		{"Last used", lastUsed},
		{"Requests", strconv.FormatInt(k.Requests, 10)},
		{"Points", strconv.FormatInt(k.Points, 10)},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// formatTime is t in RFC 3339, UTC, or "" when t is not set.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// describeKey names a key in a sentence: key 7 (3f1c2a4b…, host web-1).
func describeKey(k keystore.Key) string {
	return fmt.Sprintf("key %d (%s…, host %s)", k.ID, printable(k.Prefix), printable(k.Hostname))
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
