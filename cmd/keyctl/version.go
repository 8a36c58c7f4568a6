package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is keyctl's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// VersionOptions are the inputs of keyctl version.
type VersionOptions struct {
	IO     *IOStreams
	Format outputFormat

	Version   string
	GoVersion string
}

// NewCmdVersion returns the version command. runF, if not nil, replaces
// versionRun.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO, Version: buildVersion(), GoVersion: runtime.Version()}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print keyctl's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.format
			return runVerb(opts, runF, versionRun)
		},
	}
	return cmd
}

func versionRun(opts *VersionOptions) error {
	if opts.Format == formatJSON {
		return writeJSON(opts.IO.Out, struct {
			Version   string `json:"version"`
			GoVersion string `json:"go_version"`
		}{opts.Version, opts.GoVersion})
	}
	_, err := fmt.Fprintf(opts.IO.Out, "keyctl version %s (%s %s/%s)\n", opts.Version, opts.GoVersion, runtime.GOOS, runtime.GOARCH)
	return err
}

// buildVersion is version, or when that was not set and keyctl was built
// by "go install metricgate/cmd/keyctl@vX", the module version.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}
