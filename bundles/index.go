package bundles

import (
	"encoding/json"
	"fmt"
)

// IndexSchemaVersion is the version of the Index format; readers refuse a
// newer one rather than misread it.
const IndexSchemaVersion = 1

// Index is the machine-readable summary of a bundle, stored at IndexPath in
// its tree. It lets inspect, images and diff work without re-parsing every
// manifest.
type Index struct {
	SchemaVersion int `json:"schemaVersion"`
	// Galley is the version of galley that built the bundle.
	Galley string     `json:"galley"`
	Stack  IndexStack `json:"stack"`
	Apps   []IndexApp `json:"apps"`
	// Jobs are the batch jobs, each in its own directory under apps/
	// like an app, sorted by name.
	Jobs []IndexJob `json:"jobs,omitempty"`
	// Terraform lists the Terraform root modules under terraform/,
	// sorted by name.
	Terraform []IndexTerraform `json:"terraform,omitempty"`
	// Images is every container image the bundle's objects reference,
	// sorted and unique.
	Images []string `json:"images"`
	// Root is set when the stack was built with its file restriction
	// widened or turned off, so a reviewer sees that the bundle may hold
	// files from outside the stack's repository. Absent for the default.
	Root *IndexRoot `json:"root,omitempty"`
}

// IndexRoot records how the stack's root was widened (see stack.Root).
type IndexRoot struct {
	// Dir is the root given with --root, relative to the stack directory
	// and slash-separated, so the record is the same in every checkout.
	Dir string `json:"dir,omitempty"`
	// AllowOutside says the stack could read files anywhere
	// (--allow-outside-root).
	AllowOutside bool `json:"allowOutside,omitempty"`
}

// IndexStack identifies the stack a bundle was built from.
type IndexStack struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Kubernetes  string `json:"kubernetes"`
	Description string `json:"description,omitempty"`
	// Environment is the stack environment the bundle was built for.
	Environment string `json:"environment,omitempty"`
}

// IndexApp is one app directory of the bundle.
type IndexApp struct {
	Name      string     `json:"name"`
	Namespace string     `json:"namespace"`
	Path      string     `json:"path"`
	Chart     IndexChart `json:"chart"`
	SyncWave  int        `json:"syncWave"`
	DependsOn []string   `json:"dependsOn"`
	Objects   int        `json:"objects"`
	Images    []string   `json:"images"`
}

// IndexJob is one job directory of the bundle.
type IndexJob struct {
	Name string `json:"name"`
	// Kind is "job" or "dbt".
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Path      string `json:"path"`
	// Schedule is the CronJob's; "" for a one-off Job.
	Schedule  string   `json:"schedule,omitempty"`
	SyncWave  int      `json:"syncWave"`
	DependsOn []string `json:"dependsOn"`
	Objects   int      `json:"objects"`
	Images    []string `json:"images"`
}

// IndexTerraform is one Terraform root module of the bundle.
type IndexTerraform struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Backend is the state backend type; "" for local state.
	Backend   string   `json:"backend,omitempty"`
	Providers []string `json:"providers"`
	// Variables are the variables the stack sets, sorted.
	Variables []string `json:"variables"`
	// Outputs are what a CI run can feed back into the stack.
	Outputs []IndexOutput `json:"outputs"`
	Files   int           `json:"files"`
}

// IndexOutput is an output value of a Terraform module.
type IndexOutput struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
}

// IndexChart identifies the chart an app was rendered from.
type IndexChart struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion,omitempty"`
	// Digest is the content digest of the chart source (sha256:...).
	Digest string `json:"digest"`
}

// Marshal encodes the index deterministically (struct field order, sorted
// slices are the writer's job).
func (x *Index) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding bundle index: %w", err)
	}
	return append(b, '\n'), nil
}

// ReadIndex decodes the index of a bundle tree.
func ReadIndex(t *Tree) (*Index, error) {
	b, ok := t.Get(IndexPath)
	if !ok {
		return nil, fmt.Errorf("bundle has no %s: not built by galley?", IndexPath)
	}
	var x Index
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", IndexPath, err)
	}
	if x.SchemaVersion > IndexSchemaVersion {
		return nil, fmt.Errorf("bundle index version %d is newer than this galley understands (%d): upgrade galley", x.SchemaVersion, IndexSchemaVersion)
	}
	return &x, nil
}
