package compiler

import (
	"fmt"
	"maps"
	"slices"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/stack"
)

// terraformDir is where a stack's Terraform modules go in the bundle,
// outside apps/: Argo CD and Flux must never read them.
const terraformDir = bundles.TerraformDir + "/"

// addTerraform writes each Terraform module to terraform/<name>/ and
// lists it in the index. Load has checked the modules already; building
// them again here reads the files that go into the bundle.
func addTerraform(tree *bundles.Tree, index *bundles.Index, s *stack.Stack) error {
	var errs stack.Errors
	for _, t := range s.Terraform {
		r, err := s.BuildTerraform(t)
		if err != nil {
			var ok bool
			if errs, ok = appendStackErrors(errs, err); ok {
				continue
			}
			return fmt.Errorf("terraform %s: %w", t.Name, err)
		}
		dir := terraformDir + t.Name
		for _, f := range r.Files {
			if err := tree.Add(dir+"/"+f.Path, f.Data); err != nil {
				return fmt.Errorf("terraform %s: %w", t.Name, err)
			}
		}
		entry := bundles.IndexTerraform{
			Name:      t.Name,
			Path:      dir,
			Backend:   r.Backend,
			Providers: r.Providers,
			Variables: slices.Sorted(maps.Keys(t.Variables)),
			Outputs:   []bundles.IndexOutput{},
			Files:     len(r.Files),
		}
		if entry.Providers == nil {
			entry.Providers = []string{}
		}
		if entry.Variables == nil {
			entry.Variables = []string{}
		}
		for _, o := range r.Outputs {
			entry.Outputs = append(entry.Outputs, bundles.IndexOutput{Name: o.Name, Description: o.Description, Sensitive: o.Sensitive})
		}
		index.Terraform = append(index.Terraform, entry)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
