package keyfile

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// Format is how Write writes a key file.
type Format string

// The formats of a key file; Parse reads both.
const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// file is a key file as Write writes it.
type file struct {
	Keys []written `yaml:"keys" json:"keys"`
}

// written is one key as Write writes it: its definition, with the
// defaults left out but its scopes, and with its hash if asked for.
type written struct {
	Name         string   `yaml:"name" json:"name"`
	Hostname     string   `yaml:"hostname" json:"hostname"`
	Description  string   `yaml:"description,omitempty" json:"description,omitempty"`
	Scopes       []string `yaml:"scopes,flow" json:"scopes"`
	Measurements []string `yaml:"measurements,omitempty,flow" json:"measurements,omitempty"`
	Rate         float64  `yaml:"rate,omitempty" json:"rate,omitempty"`
	Burst        int      `yaml:"burst,omitempty" json:"burst,omitempty"`
	Bucket       string   `yaml:"bucket,omitempty" json:"bucket,omitempty"`
	MaxSeries    int      `yaml:"max_series,omitempty" json:"max_series,omitempty"`
	ExpiresAt    string   `yaml:"expires_at,omitempty" json:"expires_at,omitempty"`
	Prefix       string   `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	Hash         string   `yaml:"hash,omitempty" json:"hash,omitempty"`
}

// Write writes keys, which must have names, as a key file in format f,
// which Parse reads back to the same definitions: an expiry is written to
// the nanosecond, so applying the file to the store it came from changes
// nothing. With hashes, a key whose id it holds gets its hash and its
// display prefix, for keyctl import --hashed.
func Write(w io.Writer, keys []keystore.Key, hashes map[int64][]byte, f Format) error {
	doc := file{Keys: make([]written, 0, len(keys))}
	for _, k := range keys {
		e := written{Name: k.Name, Hostname: k.Hostname, Description: k.Description, Scopes: k.Scopes,
			Measurements: k.Measurements, Rate: k.Rate, Burst: k.Burst, Bucket: k.Bucket, MaxSeries: k.MaxSeries}
		if !k.ExpiresAt.IsZero() {
			e.ExpiresAt = k.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}
		if h, ok := hashes[k.ID]; ok {
			e.Hash, e.Prefix = hex.EncodeToString(h), k.Prefix
		}
		doc.Keys = append(doc.Keys, e)
	}
	if f == JSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	b, err := yaml.MarshalWithOptions(doc, yaml.IndentSequence(true))
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
