package terraform

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// checker holds a module's files while they are checked.
type checker struct {
	m     Module
	files map[string][]byte
	// generated are the files galley writes; the others are vendored.
	generated map[string]bool
	parsed    map[string]*hcl.File
}

// sourcePath is how a file is named in errors: its path on disk for a
// vendored file, its name in the bundle for a generated one.
func (m Module) sourcePath(rel string) string {
	if m.Source == "" {
		return rel
	}
	return filepath.Join(m.Source, filepath.FromSlash(rel))
}

func (c *checker) display(rel string) string {
	if c.generated[rel] {
		return rel
	}
	return c.m.sourcePath(rel)
}

// fieldOf is the Module field a file comes from.
func (c *checker) fieldOf(rel string) string {
	if c.generated[rel] {
		return generatedField[rel]
	}
	return FieldSource
}

func (c *checker) errAt(rel string, r *hcl.Range, format string, args ...any) *Error {
	e := &Error{Field: c.fieldOf(rel), Msg: fmt.Sprintf(format, args...)}
	if r != nil {
		e.File = &Pos{Filename: c.display(rel), Line: r.Start.Line, Column: r.Start.Column}
	}
	return e
}

// parse parses every Terraform and variables file with HCL's own parser,
// which reports syntax errors with their column (terraform-config-inspect
// keeps only the line, and would retry with the legacy HCL 1 parser).
func (c *checker) parse() Errors {
	p := hclparse.NewParser()
	c.parsed = map[string]*hcl.File{}
	var errs Errors
	for _, rel := range slices.Sorted(maps.Keys(c.files)) {
		if !isTerraformFile(rel) && !isVarsFile(rel) && path.Base(rel) != lockFile {
			continue
		}
		var f *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(rel, ".json") {
			f, diags = p.ParseJSON(c.files[rel], c.display(rel))
		} else {
			f, diags = p.ParseHCL(c.files[rel], c.display(rel))
		}
		// The first error of a file only: the parser's later ones are
		// mostly its consequences.
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				errs = append(errs, c.errAt(rel, d.Subject, "%s", diagMsg(d)))
				break
			}
		}
		if f != nil {
			c.parsed[rel] = f
		}
	}
	return errs
}

func diagMsg(d *hcl.Diagnostic) string {
	if d.Detail == "" {
		return d.Summary
	}
	return d.Summary + ": " + d.Detail
}

// inspect reads the module's variables, outputs, providers and module
// calls with terraform-config-inspect, from the files as they will be in
// the bundle.
func (c *checker) inspect() (*tfconfig.Module, Errors) {
	fsys := fstest.MapFS{}
	for rel, data := range c.files {
		if topLevel(rel) && isTerraformFile(rel) {
			fsys[rel] = &fstest.MapFile{Data: data, Mode: 0o644}
		}
	}
	if len(fsys) == 0 {
		return nil, Errors{{Field: FieldSource, Msg: fmt.Sprintf("no .tf or .tf.json files in %s", c.m.Source)}}
	}
	mod, diags := tfconfig.LoadModuleFromFilesystem(tfconfig.WrapFS(fsys), ".")
	var errs Errors
	for _, d := range diags {
		if d.Severity != tfconfig.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		e := &Error{Msg: msg}
		if d.Pos != nil {
			rel := filepath.ToSlash(d.Pos.Filename)
			e.Field = c.fieldOf(rel)
			e.File = &Pos{Filename: c.display(rel), Line: d.Pos.Line}
		}
		errs = append(errs, e)
	}
	return mod, errs
}

func (c *checker) checkVariables(mod *tfconfig.Module) Errors {
	var errs Errors
	declared := slices.Sorted(maps.Keys(mod.Variables))
	for _, name := range slices.Sorted(maps.Keys(c.m.Variables)) {
		v, ok := mod.Variables[name]
		if !ok {
			list := "none"
			if len(declared) > 0 {
				list = strings.Join(declared, ", ")
			}
			errs = append(errs, &Error{Field: FieldVariables, Key: name,
				Msg: fmt.Sprintf("the module declares no variable %q (it declares: %s)", name, list)})
			continue
		}
		if v.Sensitive {
			errs = append(errs, &Error{Field: FieldVariables, Key: name, File: c.varPos(v),
				Msg: fmt.Sprintf("variable %q is sensitive: written here its value would be in the bundle, readable by anyone who can pull it; set it in CI instead (TF_VAR_%s)", name, name)})
			continue
		}
		if err := checkType(v.Type, c.m.Variables[name]); err != nil {
			errs = append(errs, &Error{Field: FieldVariables, Key: name, File: c.varPos(v),
				Msg: fmt.Sprintf("value does not fit variable %q of type %s: %v", name, v.Type, err)})
		}
	}
	tfvars := c.tfvarsSet()
	for _, name := range slices.Sorted(maps.Keys(c.m.Variables)) {
		for _, set := range tfvars[name] {
			// Terraform reads *.auto.tfvars files in lexical order, the
			// last value winning: one after galley's would silently
			// override the stack.
			if strings.Contains(set.rel, ".auto.") && set.rel > VariablesFile {
				e := c.errAt(set.rel, &set.rng, "variable %q is also set by the module's %s, which Terraform reads after %s: its value would win over the stack's; remove one", name, set.rel, VariablesFile)
				e.Field, e.Key = FieldVariables, name
				errs = append(errs, e)
			}
		}
	}
	for _, name := range declared {
		v := mod.Variables[name]
		if !v.Required {
			continue
		}
		if _, ok := c.m.Variables[name]; ok || len(tfvars[name]) > 0 {
			continue
		}
		errs = append(errs, &Error{Field: FieldVariables, File: c.varPos(v),
			Msg: fmt.Sprintf("variable %q is required (it has no default) and is not set: add it to variables", name)})
	}
	return errs
}

func (c *checker) varPos(v *tfconfig.Variable) *Pos {
	if v.Pos.Filename == "" {
		return nil
	}
	return &Pos{Filename: c.display(filepath.ToSlash(v.Pos.Filename)), Line: v.Pos.Line}
}

// setting is a variable's value in one of the module's variables files.
type setting struct {
	rel string
	rng hcl.Range
}

// tfvarsSet finds the variables the module's own auto-loaded variables
// files set, in file order.
func (c *checker) tfvarsSet() map[string][]setting {
	set := map[string][]setting{}
	for _, rel := range slices.Sorted(maps.Keys(c.parsed)) {
		if c.generated[rel] || !autoLoaded(rel) {
			continue
		}
		attrs, _ := c.parsed[rel].Body.JustAttributes()
		for name, a := range attrs {
			set[name] = append(set[name], setting{rel: rel, rng: a.NameRange})
		}
	}
	return set
}

// checkType converts a value the way Terraform converts a variable's value
// to its type constraint. A type galley cannot read is left to Terraform.
func checkType(typeText string, raw json.RawMessage) error {
	if strings.TrimSpace(typeText) == "" {
		return nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(typeText), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return nil
	}
	ty, _, diags := typeexpr.TypeConstraintWithDefaults(expr)
	if diags.HasErrors() {
		return nil
	}
	implied, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return err
	}
	val, err := ctyjson.Unmarshal(raw, implied)
	if err != nil {
		return err
	}
	if _, err := convert.Convert(val, ty); err != nil {
		var pe cty.PathError
		if errors.As(err, &pe) && len(pe.Path) > 0 {
			return fmt.Errorf("%s: %w", formatPath(pe.Path), err)
		}
		return err
	}
	return nil
}

func formatPath(p cty.Path) string {
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			if b.Len() > 0 {
				b.WriteString(".")
			}
			b.WriteString(s.Name)
		case cty.IndexStep:
			switch s.Key.Type() {
			case cty.Number:
				b.WriteString("[" + s.Key.AsBigFloat().Text('f', -1) + "]")
			case cty.String:
				b.WriteString(fmt.Sprintf("[%q]", s.Key.AsString()))
			}
		}
	}
	return b.String()
}

// moduleBlock is a block of the module's own files.
type moduleBlock struct {
	rel   string
	kind  string // backend, cloud or provider
	label string // backend type, provider name
	alias string
	rng   hcl.Range
}

// blocks finds the terraform backend/cloud blocks and provider blocks of
// the module's top-level files, galley's generated ones excepted.
func (c *checker) blocks() (backends, providers []moduleBlock) {
	for _, rel := range slices.Sorted(maps.Keys(c.parsed)) {
		if (c.generated[rel] && rel != ConfigFile) || !topLevel(rel) || !isTerraformFile(rel) {
			continue
		}
		content, _, _ := c.parsed[rel].Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
			{Type: "terraform"},
			{Type: "provider", LabelNames: []string{"name"}},
		}})
		for _, b := range content.Blocks {
			switch b.Type {
			case "terraform":
				inner, _, _ := b.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
					{Type: "backend", LabelNames: []string{"type"}},
					{Type: "cloud"},
				}})
				for _, ib := range inner.Blocks {
					label := "cloud" // HCP Terraform / Terraform Enterprise
					if ib.Type == "backend" {
						label = ib.Labels[0]
					}
					backends = append(backends, moduleBlock{rel: rel, kind: ib.Type, label: label, rng: ib.DefRange})
				}
			case "provider":
				mb := moduleBlock{rel: rel, kind: "provider", label: b.Labels[0], rng: b.DefRange}
				attrs, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "alias"}}})
				if a, ok := attrs.Attributes["alias"]; ok {
					if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
						mb.alias = v.AsString()
					}
				}
				providers = append(providers, mb)
			}
		}
	}
	return backends, providers
}

func (c *checker) checkBackend() Errors {
	if c.m.Backend == nil {
		return nil
	}
	backends, _ := c.blocks()
	var errs Errors
	for _, b := range backends {
		what := fmt.Sprintf("backend %q", b.label)
		if b.kind == "cloud" {
			what = "a cloud block"
		}
		e := c.errAt(b.rel, &b.rng, "the module already says where its state lives (%s): remove that from the module, or backend from the stack", what)
		e.Field = FieldBackend
		errs = append(errs, e)
	}
	return errs
}

func (c *checker) backend() string {
	if c.m.Backend != nil {
		return c.m.Backend.Type
	}
	backends, _ := c.blocks()
	if len(backends) > 0 {
		return backends[0].label
	}
	return ""
}

func (c *checker) checkProviders() Errors {
	if len(c.m.Providers) == 0 {
		return nil
	}
	_, existing := c.blocks()
	var errs Errors
	for _, name := range slices.Sorted(maps.Keys(c.m.Providers)) {
		v, err := decodeJSON(c.m.Providers[name])
		if err != nil {
			errs = append(errs, &Error{Field: FieldProviders, Key: name, Msg: err.Error()})
			continue
		}
		configs, ok := v.([]any)
		if !ok {
			configs = []any{v}
		}
		seen := map[string]bool{}
		for _, cfg := range configs {
			m, _ := cfg.(map[string]any)
			alias, _ := m["alias"].(string)
			key := providerKey(name, alias)
			if seen[key] {
				errs = append(errs, &Error{Field: FieldProviders, Key: name,
					Msg: fmt.Sprintf("two configurations of provider %s: give each an alias", key)})
				continue
			}
			seen[key] = true
			for _, b := range existing {
				if b.label != name || b.alias != alias {
					continue
				}
				e := c.errAt(b.rel, &b.rng, "the module already configures provider %s: remove it from the module or from providers", key)
				e.Field, e.Key = FieldProviders, name
				errs = append(errs, e)
			}
		}
	}
	return errs
}

func providerKey(name, alias string) string {
	if alias == "" {
		return name
	}
	return name + "." + alias
}

// checkModuleCalls refuses a local module call that CI could not follow
// in the bundle: one that leaves the module directory, or names a
// directory with no Terraform files in it.
func (c *checker) checkModuleCalls(mod *tfconfig.Module) Errors {
	var errs Errors
	for _, name := range slices.Sorted(maps.Keys(mod.ModuleCalls)) {
		mc := mod.ModuleCalls[name]
		if !strings.HasPrefix(mc.Source, "./") && !strings.HasPrefix(mc.Source, "../") {
			continue // a registry, git or other remote source: fetched by init
		}
		rel := filepath.ToSlash(mc.Pos.Filename)
		e := &Error{Field: c.fieldOf(rel), File: &Pos{Filename: c.display(rel), Line: mc.Pos.Line}}
		target := path.Clean(mc.Source)
		if target == ".." || strings.HasPrefix(target, "../") {
			e.Msg = fmt.Sprintf("module %q has source %q, outside the module directory, which is all galley vendors: move that module inside it", name, mc.Source)
			errs = append(errs, e)
			continue
		}
		found := false
		for f := range c.files {
			if isTerraformFile(f) && path.Dir(f) == target {
				found = true
				break
			}
		}
		if !found {
			e.Msg = fmt.Sprintf("module %q has source %q, which holds no .tf or .tf.json files in the module directory", name, mc.Source)
			errs = append(errs, e)
		}
	}
	return errs
}
