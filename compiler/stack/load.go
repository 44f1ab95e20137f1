// Package stack loads a stack package written in CUE, validates it against
// galley's embedded schema and decodes it into Go values.
package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	galleycue "github.com/galley-dev/galley/cue"
)

// Field is the top-level field of a stack package that holds the stack.
const Field = "stack"

// Load loads the CUE package in dir, unifies its stack field with the
// schema and checks what the schema cannot express (dependencies, chart
// paths). Problems in the user's CUE come back as Errors, all of them.
func Load(ctx context.Context, dir string, opts ...Option) (*Stack, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving stack directory: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("reading stack: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("reading stack: %s is not a directory", dir)
	}
	root, err := resolveRoot(abs, o.root)
	if err != nil {
		return nil, err
	}

	overlay := schemaOverlay(abs)
	cfg := &load.Config{Dir: abs, Overlay: overlay}
	insts := load.Instances([]string{".", galleycue.ModulePath}, cfg)
	// Before any error of the load: a parse error would quote a file from
	// outside the root.
	if errs := checkCUEFiles(insts[0], abs, root, overlay); len(errs) > 0 {
		return nil, errs.sort()
	}
	for _, inst := range insts {
		if inst.Err != nil {
			errs := fromCUE(inst.Err)
			for _, e := range errs {
				// A load error's path is an import path, not a field.
				e.Path, e.elems = "", nil
			}
			return nil, errs.sort()
		}
	}
	cctx := cuecontext.New()
	// pkg.Err() would hold only the first error; validate below finds all.
	pkg := cctx.BuildInstance(insts[0])
	schema := cctx.BuildInstance(insts[1]).LookupPath(cue.ParsePath("#Stack"))
	if err := schema.Err(); err != nil {
		return nil, fmt.Errorf("galley's embedded schema is broken: %w", err)
	}

	sv := pkg.LookupPath(cue.ParsePath(Field))
	if !sv.Exists() && pkg.Err() != nil {
		return nil, fromCUE(pkg.Err()).sort()
	}
	if !sv.Exists() {
		e := &Error{Msg: fmt.Sprintf("no %q field: a stack package declares `%s: {name: ..., version: ..., apps: ...}`", Field, Field)}
		if files := insts[0].BuildFiles; len(files) > 0 {
			e.Pos = token.NewFile(files[0].Filename, -1, 0).Pos(0, token.NoRelPos)
		} else {
			e.Msg = fmt.Sprintf("no CUE files in %s", dir)
		}
		return nil, Errors{e}
	}
	base := sv.Unify(schema)
	v, err := applyEnvironment(base, o.env)
	if err != nil {
		return nil, err
	}
	if errs := validate(v, schema); len(errs) > 0 {
		placeErrors(errs, sv)
		hintUnknownFields(errs, v)
		// Report the mistakes the schema cannot see as well, so that one
		// run of vet finds them all.
		ls := lenient(v, abs)
		ls.root = root
		errs = append(errs, ls.checkLenient()...)
		return nil, dropInsideNotAllowed(errs).sort()
	}

	s, err := decode(v)
	if err != nil {
		return nil, err
	}
	s.Dir = abs
	s.root = root
	s.Environment = o.env
	s.environments = environmentNames(v)
	if err := s.environmentRepositories(base); err != nil {
		return nil, err
	}
	if errs := s.applyEnabled(); len(errs) > 0 {
		return nil, errs.sort()
	}
	if errs := s.check(); len(errs) > 0 {
		return nil, errs.sort()
	}
	return s, nil
}

// validate reports every error in the stack. CUE stops descending into a
// struct at its first error of some kinds (a field not allowed, say), so
// each top-level field and each app is also validated on its own.
func validate(v, schema cue.Value) Errors {
	errs := errsOf(v)
	if len(errs) == 0 {
		return nil
	}
	it, err := v.Fields(cue.Optional(false))
	if err != nil {
		return errs
	}
	errs = append(errs, notAllowed(v, schema, []string{Field})...)
	for it.Next() {
		errs = append(errs, errsOf(it.Value())...)
		switch it.Selector().String() {
		case "apps", "jobs", "terraform":
		case "monitoring":
			errs = append(errs, validateDeep(it.Value())...)
			continue
		default:
			continue
		}
		apps, err := it.Value().Fields()
		if err != nil {
			continue
		}
		for apps.Next() {
			errs = append(errs, errsOf(apps.Value())...)
			def := schema.LookupPath(cue.MakePath(it.Selector(), cue.AnyString))
			errs = append(errs, notAllowed(apps.Value(), def, []string{Field, it.Selector().String(), apps.Selector().String()})...)
			fields, err := apps.Value().Fields()
			if err != nil {
				continue
			}
			for fields.Next() {
				errs = append(errs, errsOf(fields.Value())...)
			}
		}
	}
	return errs
}

// notAllowed reports the fields of the struct v (at path elems) that its
// schema def does not declare: CUE reports only the first when another
// error comes before it.
func notAllowed(v, def cue.Value, elems []string) Errors {
	if !def.Exists() {
		return nil
	}
	var errs Errors
	it, err := v.Fields(cue.Optional(false))
	if err != nil {
		return nil
	}
	for it.Next() {
		if def.Allows(it.Selector()) {
			continue
		}
		el := append(append([]string{}, elems...), it.Selector().String())
		errs = append(errs, &Error{Pos: userPos(it.Value()), Path: cuePath(el), Msg: "field not allowed", elems: el})
	}
	return errs
}

func errsOf(v cue.Value) Errors {
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return fromCUE(err)
	}
	return nil
}

// schemaOverlay places the embedded schema where CUE's loader resolves
// imports of galley.dev/stack/...: the cue.mod/pkg directory of the module
// holding dir. A stack directory outside any CUE module gets a module file
// too, so it loads without `cue mod init`.
func schemaOverlay(dir string) map[string]load.Source {
	root, ok := moduleRoot(dir)
	overlay := map[string]load.Source{}
	if !ok {
		root = dir
		overlay[filepath.Join(root, "cue.mod", "module.cue")] = load.FromString(
			"module: \"galley.local/stack\"\nlanguage: version: \"v0.17.0\"\n")
	}
	pkgDir := filepath.Join(root, "cue.mod", "pkg", filepath.FromSlash(galleycue.ModulePath))
	for name, src := range schemaFiles(pkgDir) {
		overlay[name] = src
	}
	return overlay
}

// schemaFiles returns the embedded schema's files as overlay sources in dir.
func schemaFiles(dir string) map[string]load.Source {
	out := map[string]load.Source{}
	err := fs.WalkDir(galleycue.Schema(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(galleycue.Schema(), p)
		if err != nil {
			return err
		}
		out[filepath.Join(dir, filepath.FromSlash(p))] = load.FromBytes(b)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("reading embedded schema: %v", err)) // embed.FS cannot fail to read its own files
	}
	return out
}

func moduleRoot(dir string) (string, bool) {
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "cue.mod")); err == nil && fi.IsDir() {
			return d, true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// decode goes through JSON on purpose: chart values then have exactly the
// types `helm template -f values.yaml` gives templates (float64 numbers).
func decode(v cue.Value) (*Stack, error) {
	b, err := v.MarshalJSON()
	if err != nil {
		return nil, fromCUE(err).sort()
	}
	s := &Stack{value: v}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decoding stack: %w", err)
	}
	if s.Kubernetes.APIVersions == nil {
		s.Kubernetes.APIVersions = []string{}
	}
	apps := v.LookupPath(cue.ParsePath("apps"))
	it, err := apps.Fields()
	if err != nil {
		return nil, fromCUE(err).sort()
	}
	for it.Next() {
		av := it.Value()
		b, err := av.MarshalJSON()
		if err != nil {
			return nil, fromCUE(err).sort()
		}
		a := &App{value: av}
		if err := json.Unmarshal(b, a); err != nil {
			return nil, fmt.Errorf("decoding app %s: %w", it.Selector(), err)
		}
		if a.Values == nil {
			a.Values = map[string]any{}
		}
		s.Apps = append(s.Apps, a)
	}
	sort.Slice(s.Apps, func(i, j int) bool { return s.Apps[i].Name < s.Apps[j].Name })
	if err := decodeJobs(s, v); err != nil {
		return nil, err
	}
	if err := decodeTerraform(s, v); err != nil {
		return nil, err
	}
	return s, nil
}

// check finds the mistakes a schema cannot: references between apps, files
// on disk.
func (s *Stack) check() Errors {
	var errs Errors
	for _, a := range s.Apps {
		errs = append(errs, s.checkApp(a)...)
	}
	errs = append(errs, s.checkJobs()...)
	errs = append(errs, s.checkCycles()...)
	errs = append(errs, s.checkTerraform()...)
	errs = append(errs, s.checkMonitoring()...)
	errs = append(errs, s.CheckFlux()...)
	return errs
}

func (s *Stack) checkApp(a *App) Errors {
	errs := s.checkAppDeps(a)
	errs = append(errs, s.checkChart(a)...)
	errs = append(errs, s.readValuesFiles(a)...)
	for i, p := range a.Patches {
		if _, ok := p.Patch.([]any); ok && p.Target == nil {
			errs = append(errs, a.errAt(fmt.Sprintf("patches[%d]", i),
				"a JSON 6902 patch (a list of operations) needs a target: kind and name of the object to patch"))
		}
	}
	return errs
}

func (s *Stack) checkAppDeps(a *App) Errors {
	var errs Errors
	for i, dep := range a.DependsOn {
		switch {
		case dep == a.Name:
			errs = append(errs, a.errAt(fmt.Sprintf("dependsOn[%d]", i), "app %s depends on itself", a.Name))
		case !s.isNode(dep):
			e := a.errAt(fmt.Sprintf("dependsOn[%d]", i), "app %s depends on %q, %s", a.Name, dep, s.notANode())
			e.Hint = s.nodeHint(dep)
			errs = append(errs, e)
		}
	}
	return errs
}

// checkCycles reports each dependency cycle once, named in full, at the
// dependsOn entry of its alphabetically first app or job.
func (s *Stack) checkCycles() Errors {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var errs Errors
	seen := map[string]bool{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		n, _ := s.node(name)
		for _, dep := range n.dependsOn {
			if !s.isNode(dep) || dep == name {
				continue // reported by checkApp and checkJob
			}
			switch state[dep] {
			case unvisited:
				visit(dep)
			case visiting:
				i := slices.Index(stack, dep)
				cycle := canonicalCycle(stack[i:])
				key := strings.Join(cycle, ",")
				if seen[key] {
					continue
				}
				seen[key] = true
				first, _ := s.node(cycle[0])
				path := append(append([]string{}, cycle...), cycle[0])
				errs = append(errs, first.errAt(fmt.Sprintf("dependsOn[%d]", slices.Index(first.dependsOn, cycle[1])),
					"dependency cycle: %s", strings.Join(path, " -> ")))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, n := range s.nodes() {
		if state[n.name] == unvisited {
			visit(n.name)
		}
	}
	return errs
}

// canonicalCycle rotates a cycle to start at its smallest name so the same
// cycle found from different apps reads the same.
func canonicalCycle(c []string) []string {
	min := 0
	for i := range c {
		if c[i] < c[min] {
			min = i
		}
	}
	return append(append([]string{}, c[min:]...), c[:min]...)
}

func (s *Stack) appNames() []string {
	names := make([]string, len(s.Apps))
	for i, a := range s.Apps {
		names[i] = a.Name
	}
	return names
}

// errAt builds an Error at the position of a field below the app, e.g.
// "chart.path" or "dependsOn[1]".
func (a *App) errAt(field, format string, args ...any) *Error {
	return &Error{
		Pos:  a.Pos(field),
		Path: fmt.Sprintf("stack.apps.%s.%s", a.Name, field),
		Msg:  fmt.Sprintf(format, args...),
	}
}

// Pos returns the position in the user's source of a field below the app
// ("" for the app itself), falling back to the app's own position.
func (a *App) Pos(field string) token.Pos { return fieldPos(a.value, field) }

// fieldPos is the user's position of a field below v ("" for v itself),
// or else of v.
func fieldPos(v cue.Value, field string) token.Pos {
	if field != "" {
		if p := userPos(v.LookupPath(cue.ParsePath(field))); p.IsValid() {
			return p
		}
	}
	return userPos(v)
}

// userPos prefers a position in the user's files over one in the schema,
// since a unified value carries both.
func userPos(v cue.Value) token.Pos {
	if !v.Exists() {
		return token.NoPos
	}
	for _, p := range valuePositions(v) {
		if !isSchemaPos(p) {
			return p
		}
	}
	return token.NoPos
}

func valuePositions(v cue.Value) []token.Pos {
	var out []token.Pos
	if p := v.Pos(); p.IsValid() {
		out = append(out, p)
	}
	_, vs := v.Expr()
	for _, x := range vs {
		if p := x.Pos(); p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

// Waves orders apps and jobs for delivery: the sync wave of each is one
// more than the highest wave of the apps and jobs it depends on (0 for
// none), unless the stack sets syncWave. The stack must be free of cycles,
// which Load guarantees.
func Waves(s *Stack) map[string]int {
	waves := map[string]int{}
	var wave func(n depNode) int
	wave = func(n depNode) int {
		if w, ok := waves[n.name]; ok {
			return w
		}
		w := 0
		for _, d := range n.dependsOn {
			if dep, ok := s.node(d); ok {
				w = max(w, wave(dep)+1)
			}
		}
		if n.syncWave != nil {
			w = *n.syncWave
		}
		waves[n.name] = w
		return w
	}
	for _, n := range s.nodes() {
		wave(n)
	}
	return waves
}

// UserPos is the position of v in the user's files, not the schema's
// (token.NoPos when it has none): where to report a problem with v.
func UserPos(v cue.Value) token.Pos { return userPos(v) }
