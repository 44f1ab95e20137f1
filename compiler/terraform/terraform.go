// Package terraform turns a stack's Terraform module into the files of
// terraform/<name>/ in the bundle, and checks them in-process first, with
// HCL's parser and terraform-config-inspect: what a `tofu init` and `tofu
// validate` in CI would reject for reasons the stack controls.
//
// The directory holds:
//
//	<the source module's files>  vendored: .tf, .tf.json, .tfvars,
//	                             .tfvars.json, .md and .terraform.lock.hcl,
//	                             subdirectories included
//	main.tf.json                 Module.Config, Terraform's JSON syntax
//	backend.tf.json              Module.Backend
//	providers.tf.json            Module.Providers
//	galley.auto.tfvars.json      Module.Variables, loaded by Terraform
//	                             and OpenTofu without a -var-file flag
//
// Checks: HCL syntax of every Terraform file (file, line and column); a
// variable the module requires that neither the stack nor a vendored
// terraform.tfvars or *.auto.tfvars sets; a variable the stack sets that
// the module does not declare, or whose value does not convert to the
// variable's type; a sensitive variable written in the stack, where anyone
// who can pull the bundle could read it; a backend or provider
// configuration the module already has; a local module call that leaves
// the vendored directory.
package terraform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/galley-dev/galley/bundles"
)

// Names of the files galley generates in a module directory.
const (
	ConfigFile    = "main.tf.json"
	BackendFile   = "backend.tf.json"
	ProvidersFile = "providers.tf.json"
	VariablesFile = "galley.auto.tfvars.json"
)

// generatedField says which Module field each generated file comes from.
var generatedField = map[string]string{
	ConfigFile:    FieldConfig,
	BackendFile:   FieldBackend,
	ProvidersFile: FieldProviders,
	VariablesFile: FieldVariables,
}

// Module is one Terraform root module as a stack declares it.
type Module struct {
	Name string
	// Source is a local module directory to vendor; "" for none.
	Source string
	// Config is Terraform's JSON configuration syntax, a JSON object; nil
	// for none.
	Config json.RawMessage
	// Variables are input variable values.
	Variables map[string]json.RawMessage
	Backend   *Backend
	// Providers are provider configurations by provider local name: an
	// object, or an array of objects (with "alias" to tell them apart).
	Providers map[string]json.RawMessage
	// Header is a comment for the JSON files galley generates (Terraform
	// JSON's "//" key); "" for none.
	Header string
}

// Backend is where a module keeps its state.
type Backend struct {
	Type   string
	Config json.RawMessage
}

// Result is a checked module.
type Result struct {
	// Files are the module directory's files, paths relative to it,
	// sorted.
	Files []bundles.File
	// Variables are the variables the module declares, sorted by name.
	Variables []Variable
	// Outputs are the module's outputs, sorted by name: what a CI run can
	// feed back into the stack (`tofu output -json`).
	Outputs []Output
	// Providers are the provider local names the module requires, sorted.
	Providers []string
	// Backend is the backend type, "" when the module has none (local
	// state).
	Backend string
}

// Variable is an input variable of the module.
type Variable struct {
	Name        string
	Type        string
	Description string
	Required    bool
	Sensitive   bool
	// Set says the stack sets it.
	Set bool
}

// Output is an output value of the module.
type Output struct {
	Name        string
	Description string
	Sensitive   bool
}

// Build vendors, generates and checks the module's files. Problems in the
// module come back as Errors, all of them; anything else (an unreadable
// directory) as a plain error.
func Build(m Module) (*Result, error) {
	if m.Source == "" && len(m.Config) == 0 {
		return nil, Errors{{Msg: "a Terraform module needs a source directory, a config, or both"}}
	}
	files := map[string][]byte{}
	var errs Errors
	if m.Source != "" {
		vendored, verrs, err := vendor(m.Source)
		if err != nil {
			return nil, err
		}
		errs = append(errs, verrs...)
		files = vendored
	}
	generated, err := m.generate()
	if err != nil {
		return nil, err
	}
	isGenerated := map[string]bool{}
	for name, data := range generated {
		isGenerated[name] = true
		if _, ok := files[name]; ok {
			errs = append(errs, &Error{
				Field: FieldSource,
				File:  &Pos{Filename: m.sourcePath(name)},
				Msg:   fmt.Sprintf("%s is a file galley writes from the stack's %s: rename it in the module", name, generatedField[name]),
			})
			continue
		}
		files[name] = data
	}
	if len(errs) > 0 {
		return nil, errs
	}

	c := &checker{m: m, files: files, generated: isGenerated}
	if errs := c.parse(); len(errs) > 0 {
		return nil, errs
	}
	mod, errs := c.inspect()
	if len(errs) > 0 {
		return nil, errs
	}
	errs = append(errs, c.checkVariables(mod)...)
	errs = append(errs, c.checkBackend()...)
	errs = append(errs, c.checkProviders()...)
	errs = append(errs, c.checkModuleCalls(mod)...)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}

	r := &Result{Backend: c.backend()}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		r.Files = append(r.Files, bundles.File{Path: name, Data: files[name]})
	}
	for _, name := range slices.Sorted(maps.Keys(mod.Variables)) {
		v := mod.Variables[name]
		_, set := m.Variables[name]
		r.Variables = append(r.Variables, Variable{
			Name: name, Type: v.Type, Description: v.Description,
			Required: v.Required, Sensitive: v.Sensitive, Set: set,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(mod.Outputs)) {
		o := mod.Outputs[name]
		r.Outputs = append(r.Outputs, Output{Name: name, Description: o.Description, Sensitive: o.Sensitive})
	}
	r.Providers = slices.Sorted(maps.Keys(mod.RequiredProviders))
	return r, nil
}

// generate writes the module's generated files: canonical JSON (sorted
// keys, two-space indent), so the bytes depend only on the values.
func (m Module) generate() (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(name string, v map[string]any) error {
		// A tfvars file gets no "//" comment: Terraform would take it for
		// an undeclared variable.
		if _, ok := v["//"]; !ok && m.Header != "" && name != VariablesFile {
			v["//"] = m.Header
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "${...}" and "<" stay readable
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		out[name] = b.Bytes()
		return nil
	}
	if len(m.Config) > 0 {
		cfg, err := decodeObject(m.Config)
		if err != nil {
			return nil, fmt.Errorf("terraform %s: config: %w", m.Name, err)
		}
		if err := add(ConfigFile, cfg); err != nil {
			return nil, err
		}
	}
	if m.Backend != nil {
		cfg := map[string]any{}
		if len(m.Backend.Config) > 0 {
			var err error
			if cfg, err = decodeObject(m.Backend.Config); err != nil {
				return nil, fmt.Errorf("terraform %s: backend: %w", m.Name, err)
			}
		}
		if err := add(BackendFile, map[string]any{
			"terraform": map[string]any{"backend": map[string]any{m.Backend.Type: cfg}},
		}); err != nil {
			return nil, err
		}
	}
	if len(m.Providers) > 0 {
		providers := map[string]any{}
		for name, raw := range m.Providers {
			v, err := decodeJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("terraform %s: providers.%s: %w", m.Name, name, err)
			}
			if _, ok := v.([]any); !ok {
				v = []any{v}
			}
			providers[name] = v
		}
		if err := add(ProvidersFile, map[string]any{"provider": providers}); err != nil {
			return nil, err
		}
	}
	if len(m.Variables) > 0 {
		vars := map[string]any{}
		for name, raw := range m.Variables {
			v, err := decodeJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("terraform %s: variables.%s: %w", m.Name, name, err)
			}
			vars[name] = v
		}
		if err := add(VariablesFile, vars); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeJSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers exactly as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("want a JSON object")
	}
	return m, nil
}
