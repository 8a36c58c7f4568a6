package main

import (
	"fmt"

	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// planOutput prints what keyctl apply and import plan and do: on a
// terminal a table and sentences; when piped, a tab-separated line per
// change on standard output (action, name, key id, hostname, changes) and
// the sentences on standard error; with -o json one document at the end.
type planOutput struct {
	ios        *IOStreams
	format     outputFormat
	src        string // the file, for sentences
	secretsOut string // --secrets-out, where the new keys' values went
	verb       string // "Applied" or "Imported"
}

// kinds are the kinds of change in the order summaries list them.
var kinds = []keystore.ChangeKind{keystore.PlanCreate, keystore.PlanUpdate, keystore.PlanReplace,
	keystore.PlanRevoke, keystore.PlanUnchanged}

// say writes a sentence for a person: on standard output on a terminal,
// else on standard error, so that the lines on standard output stay
// tab-separated.
func (o planOutput) say(format string, a ...any) {
	w := o.ios.ErrOut
	if o.ios.OutTTY {
		w = o.ios.Out
	}
	fmt.Fprintf(w, format+"\n", a...)
}

// plan prints p's changes, before they are applied; nothing with -o json.
func (o planOutput) plan(p keystore.Plan) error {
	if o.format == formatJSON {
		return nil
	}
	if !o.ios.OutTTY {
		for _, c := range p.Changes {
			fmt.Fprintf(o.ios.Out, "%s\t%s\t%s\t%s\t%s\n", c.Kind, printable(c.Name), keyID(c.Key, ""),
				printable(hostOf(c)), printable(diffText(c.Diffs)))
		}
		return nil
	}
	tw := tabwriter.NewWriter(o.ios.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tNAME\tID\tHOSTNAME\tCHANGES")
	for _, c := range p.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Kind, orDash(printable(c.Name)), keyID(c.Key, "-"),
			printable(hostOf(c)), printable(diffText(c.Diffs)))
	}
	return tw.Flush()
}

// done prints the end of a run: for a plan not applied (dry run, or no
// change), the plan and what it would do; for an applied one, what was
// done and the new keys' values.
func (o planOutput) done(p keystore.Plan, dryRun, applied bool) error {
	if o.format == formatJSON {
		return writeJSON(o.ios.Out, newApplyJSON(p, dryRun, applied, o.secretsOut != ""))
	}
	if !applied {
		if err := o.plan(p); err != nil {
			return err
		}
	}
	o.stale(p)
	switch {
	case !p.Changed():
		o.say("No changes: the key store holds the keys %s declares.", o.src)
		return nil
	case dryRun:
		o.say("Plan: %s. Dry run: nothing was written.", summary(p, false))
		return nil
	}
	verb := o.verb
	if verb == "" {
		verb = "Applied"
	}
	o.say("%s: %s.", verb, summary(p, true))
	return o.values(p)
}

// stale notes the keys apply made that the file no longer names.
func (o planOutput) stale(p keystore.Plan) {
	if len(p.Stale) == 0 {
		return
	}
	names := make([]string, len(p.Stale))
	for i, k := range p.Stale {
		names[i] = fmt.Sprintf("%s (key %d)", orDash(printable(k.Name)), k.ID)
	}
	fmt.Fprintf(o.ios.ErrOut, "%s an earlier apply made %s not in %s: %s; --prune revokes them.\n",
		plural(len(names), "key"), isAre(len(names)), o.src, strings.Join(names, ", "))
}

// values prints the values of the keys p made, or says where they went.
func (o planOutput) values(p keystore.Plan) error {
	var made []keystore.Change
	for _, c := range p.Changes {
		if c.Value != "" && c.Result.ID != 0 {
			made = append(made, c)
		}
	}
	switch {
	case len(made) == 0:
		return nil
	case o.secretsOut != "":
		o.say("The values of the new keys (%d) are in %s (mode 0600), by name.", len(made), o.secretsOut)
		return nil
	}
	keys, plains := make([]keystore.Key, len(made)), make([]string, len(made))
	for i, c := range made {
		keys[i], plains[i] = c.Result, c.Value
	}
	fmt.Fprintln(o.ios.Out)
	return writeNewKeys(o.ios, keys, plains)
}

// summary counts p's changes by kind, as planned or as done.
func summary(p keystore.Plan, done bool) string {
	planned := map[keystore.ChangeKind]string{keystore.PlanCreate: "to create", keystore.PlanUpdate: "to update",
		keystore.PlanReplace: "to replace", keystore.PlanRevoke: "to revoke", keystore.PlanUnchanged: "unchanged"}
	past := map[keystore.ChangeKind]string{keystore.PlanCreate: "created", keystore.PlanUpdate: "updated",
		keystore.PlanReplace: "replaced", keystore.PlanRevoke: "revoked", keystore.PlanUnchanged: "unchanged"}
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		if p.Count(k) == 0 {
			continue
		}
		word := planned[k]
		if done {
			word = past[k]
		}
		parts = append(parts, fmt.Sprintf("%d %s", p.Count(k), word))
	}
	return strings.Join(parts, ", ")
}

// plural is n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// keyID is k's id, or none for no key.
func keyID(k keystore.Key, none string) string {
	if k.ID == 0 {
		return none
	}
	return strconv.FormatInt(k.ID, 10)
}

// hostOf is the host a change leaves its key bound to.
func hostOf(c keystore.Change) string {
	if c.Want.Hostname != "" {
		return c.Want.Hostname
	}
	return c.Key.Hostname
}

// diffText shows a change's fields: "rate: 10 → 50; description: "" → "web one"".
func diffText(diffs []keystore.Diff) string {
	parts := make([]string, len(diffs))
	for i, d := range diffs {
		from, to := d.From, d.To
		if d.Field == "description" {
			from, to = strconv.Quote(from), strconv.Quote(to)
		}
		parts[i] = fmt.Sprintf("%s: %s → %s", d.Field, from, to)
	}
	return strings.Join(parts, "; ")
}

// applyJSON is what apply and import print with -o json.
type applyJSON struct {
	DryRun  bool           `json:"dry_run"`
	Applied bool           `json:"applied"` // whether anything was written
	Changes []changeJSON   `json:"changes"`
	Stale   []changeJSON   `json:"not_in_file"` // keys an earlier apply made, which --prune would revoke
	Summary map[string]int `json:"summary"`
}

// changeJSON is one change, with the new key's value once it is made.
type changeJSON struct {
	Action   string     `json:"action"`
	Name     string     `json:"name"`
	ID       *int64     `json:"id"`                 // the key after the change; null for a key to create
	Replaces *int64     `json:"replaces,omitempty"` // the key a replace revokes
	Hostname string     `json:"hostname"`
	Diffs    []diffJSON `json:"diffs"`
	Key      string     `json:"key,omitempty"` // the new key's value, shown this once
}

type diffJSON struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// newApplyJSON converts p; values are left out when they went to a file
// or nothing was applied.
func newApplyJSON(p keystore.Plan, dryRun, applied, valuesElsewhere bool) applyJSON {
	j := applyJSON{DryRun: dryRun, Applied: applied, Changes: []changeJSON{}, Stale: []changeJSON{}, Summary: map[string]int{}}
	for _, k := range kinds {
		j.Summary[string(k)] = p.Count(k)
	}
	for _, c := range p.Changes {
		cj := changeJSON{Action: string(c.Kind), Name: c.Name, Hostname: hostOf(c), Diffs: []diffJSON{}}
		for _, d := range c.Diffs {
			cj.Diffs = append(cj.Diffs, diffJSON{d.Field, d.From, d.To})
		}
		switch k := c.Result; {
		case applied && k.ID != 0:
			cj.ID = &k.ID
		case c.Key.ID != 0:
			cj.ID = &c.Key.ID
		}
		if c.Kind == keystore.PlanReplace {
			cj.Replaces = &c.Key.ID
		}
		if applied && !valuesElsewhere && c.Result.ID != 0 {
			cj.Key = c.Value
		}
		j.Changes = append(j.Changes, cj)
	}
	for _, k := range p.Stale {
		j.Stale = append(j.Stale, changeJSON{Action: "not_in_file", Name: k.Name, ID: &k.ID, Hostname: k.Hostname, Diffs: []diffJSON{}})
	}
	return j
}
