package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// maxHostErrors is how many faults of a hosts file keyctl reports.
const maxHostErrors = 20

// generateManyRun makes one key for each host of opts.HostnameFile, with
// the policy of opts.Key, in one transaction.
func generateManyRun(opts *GenerateOptions) error {
	data, src, err := readInput(opts.IO, opts.HostnameFile)
	if err != nil {
		return err
	}
	nks, err := parseHosts(data, src, opts.Key)
	if err != nil {
		return err
	}
	s, err := opts.OpenStore(opts.Ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, plains, err := s.GenerateMany(opts.Ctx, nks)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	switch {
	case opts.Quiet:
		w := bufio.NewWriter(out)
		for _, p := range plains {
			fmt.Fprintln(w, p)
		}
		return w.Flush()
	case opts.Format == formatJSON:
		list := make([]generatedJSON, len(keys))
		for i, k := range keys {
			list[i] = generatedJSON{Key: newKeyJSON(k, opts.Now()), Value: plains[i]}
		}
		return writeJSON(out, list)
	}
	return writeNewKeys(opts.IO, keys, plains)
}

// writeNewKeys prints new keys with their values: a table on a terminal,
// else a tab-separated line each, without a header: id, hostname, name,
// key.
func writeNewKeys(ios *IOStreams, keys []keystore.Key, plains []string) error {
	w := bufio.NewWriter(ios.Out)
	if !ios.OutTTY {
		for i, k := range keys {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", k.ID, printable(k.Hostname), printable(k.Name), plains[i])
		}
		return w.Flush()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tHOSTNAME\tKEY")
	for i, k := range keys {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", k.ID, orDash(printable(k.Name)), printable(k.Hostname), plains[i])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nGenerated %s. Store them now: they will not be shown again.\n", plural(len(keys), "key"))
	return w.Flush()
}

// readInput reads the file at path, or standard input for "-", and
// returns it with its name for messages.
func readInput(ios *IOStreams, path string) ([]byte, string, error) {
	if path == "-" {
		data, err := io.ReadAll(ios.In)
		if err != nil {
			return nil, "", fmt.Errorf("read standard input: %w", err)
		}
		return data, "standard input", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", inputErrorf("%w", err)
	}
	return data, path, nil
}

// parseHosts reads a hosts file, src: a host, or a host and a name, per
// line; blank lines and # comments are skipped. It returns a key of
// policy's for each, or an input error naming every line at fault.
func parseHosts(data []byte, src string, policy keystore.NewKey) ([]keystore.NewKey, error) {
	var (
		nks   []keystore.NewKey
		errs  []error
		names = map[string]int{}
	)
	fault := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", src, line, fmt.Sprintf(format, a...)))
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) > 2 {
			fault(n, "want a host, or a host and a name, got %d fields", len(fields))
			continue
		}
		nk := policy
		nk.Hostname = fields[0]
		if _, err := keystore.CanonicalHostname(nk.Hostname); err != nil {
			fault(n, "%v", err)
			continue
		}
		if len(fields) == 2 {
			nk.Name = fields[1]
			if err := keystore.CheckName(nk.Name, "the name"); err != nil {
				fault(n, "%v", err)
				continue
			}
			if first, dup := names[nk.Name]; dup {
				fault(n, "the name %q is on line %d too: names are unique", nk.Name, first)
				continue
			}
			names[nk.Name] = n
		}
		nks = append(nks, nk)
	}
	if len(errs) > maxHostErrors {
		errs = append(errs[:maxHostErrors], fmt.Errorf("%s: %d more errors", src, len(errs)-maxHostErrors))
	}
	switch {
	case len(errs) > 0:
		return nil, inputErrorf("%w", errors.Join(errs...))
	case len(nks) == 0:
		return nil, inputErrorf("%s lists no hosts: want a host, or a host and a name, per line", src)
	}
	return nks, nil
}
