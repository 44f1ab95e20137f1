// Package cue embeds galley's stack schema, a CUE module, in the binary.
//
// The package shares its name with cuelang.org/go/cue; import it under an
// alias (galleycue) where both are needed.
package cue

import (
	"embed"
	"io/fs"
)

// ModulePath is the CUE import path of the current schema version.
const ModulePath = "galley.dev/stack/v1alpha1"

// Version is the schema version, the last element of ModulePath.
const Version = "v1alpha1"

//go:embed cue.mod/module.cue v1alpha1/*.cue
var files embed.FS

// Schema returns the schema package's files, named relative to the package
// directory (e.g. "stack.cue").
func Schema() fs.FS {
	sub, err := fs.Sub(files, Version)
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}
