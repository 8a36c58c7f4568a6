package keyfile

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// Definitions checks entries, read from src, as keyctl apply takes them,
// and returns the keys they define, in order, for keystore.Store.Plan. An
// expiry must be after now. Every error wraps ErrInvalid and names the
// entry by its line and name: a key the store would refuse (a bad host,
// scope or policy, an expiry in the past), a name two entries share, or a
// hash, which only keyctl import takes.
func Definitions(entries []Entry, src string, now time.Time) ([]keystore.NewKey, error) {
	defs := make([]keystore.NewKey, 0, len(entries))
	var errs errorList
	seen := make(map[string]int, len(entries))
	for _, e := range entries {
		if e.Hash != "" || e.Prefix != "" {
			errs.add(e.fault(src, fmt.Errorf(`"hash" and "prefix" are for keyctl import --hashed: apply makes keys of its own`)))
			continue
		}
		nk, err := e.Definition(now)
		if err == nil {
			err = duplicate(seen, e)
		}
		errs.add(e.fault(src, err))
		defs = append(defs, nk)
	}
	if err := errs.err(src); err != nil {
		return nil, err
	}
	return defs, nil
}

// Hashed checks entries, read from src, as keyctl import --hashed takes
// them: each as Definitions does, and each with its hash. It returns the
// keys to import, in order. Errors wrap ErrInvalid and name each entry at
// fault by its line and name.
func Hashed(entries []Entry, src string, now time.Time) ([]keystore.HashedKey, error) {
	keys := make([]keystore.HashedKey, 0, len(entries))
	var errs errorList
	seen := make(map[string]int, len(entries))
	hashes := make(map[string]int, len(entries))
	for _, e := range entries {
		nk, err := e.Definition(now)
		if err == nil {
			err = duplicate(seen, e)
		}
		if err == nil && e.Hash == "" {
			err = fmt.Errorf(`no "hash": import brings keys by their SHA-256 (keyctl export --with-hashes writes them)`)
		}
		if line, dup := hashes[e.Hash]; err == nil && dup {
			err = fmt.Errorf(`the entry at line %d has the same "hash"`, line)
		}
		hashes[e.Hash] = e.Line
		errs.add(e.fault(src, err))
		if err != nil {
			continue
		}
		hk := keystore.HashedKey{NewKey: nk, Prefix: e.Prefix}
		hex.Decode(hk.Hash[:], []byte(e.Hash)) // checked as it was read
		keys = append(keys, hk)
	}
	if err := errs.err(src); err != nil {
		return nil, err
	}
	return keys, nil
}

// Definition checks e alone and returns the key it defines: its name (if
// it has one) and host, and its policy checked by keystore.ParsePolicy,
// with an expiry after now. Errors name fields as a file does and wrap the
// keystore's: ErrInvalidHostname, ErrInvalidScope, ErrInvalidPolicy.
func (e Entry) Definition(now time.Time) (keystore.NewKey, error) {
	if e.Name != "" {
		if err := keystore.CheckName(e.Name, `"name"`); err != nil {
			return keystore.NewKey{}, err
		}
	}
	host, err := keystore.CanonicalHostname(e.Hostname)
	if err != nil {
		return keystore.NewKey{}, err
	}
	in := keystore.PolicyInput{ExpiresAt: e.ExpiresAt, Scopes: e.Scopes, Measurements: e.Measurements, Rate: e.Rate,
		Burst: e.Burst, Description: e.Description, Bucket: e.Bucket, MaxSeries: e.MaxSeries, Name: fieldName}
	if e.Measurements != nil && len(*e.Measurements) == 0 {
		in.Measurements, in.AllMeasurements = nil, true
	}
	u, err := keystore.ParsePolicy(in, now)
	if err != nil {
		return keystore.NewKey{}, err
	}
	nk := u.NewKey(host)
	nk.Name = e.Name
	return nk, nil
}

// fieldName names a policy input as a file does; a file has no
// all_measurements ("measurements: []" does its work) and no expires_in.
func fieldName(f keystore.Field) string {
	switch f {
	case keystore.FieldAllMeasurements, keystore.FieldExpiresIn, keystore.FieldNoExpiry:
		return ""
	}
	return strconv.Quote(string(f))
}

// fault names e, read from src, in err, or returns nil.
func (e Entry) fault(src string, err error) error {
	if err == nil {
		return nil
	}
	return invalidf("%s:%d: entry %q: %v", src, e.Line, e.Name, err)
}

// duplicate records e's name in seen and returns an error if an earlier
// entry had it.
func duplicate(seen map[string]int, e Entry) error {
	if line, dup := seen[e.Name]; dup {
		return fmt.Errorf("the entry at line %d has the same name: names are unique", line)
	}
	seen[e.Name] = e.Line
	return nil
}
