// Command keyctl manages metricgate's API keys: it generates, lists, shows,
// updates, rotates and revokes the keys kept in the key store the apiserver
// reads, and shows the audit log of those changes.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
