// Command galley compiles a data platform declared in CUE into one signed
// OCI artifact that Argo CD or Flux deploy from a registry.
package main

import (
	"os"

	"github.com/galley-dev/galley/cmd/galley/cli"
)

func main() { os.Exit(cli.Main()) }
