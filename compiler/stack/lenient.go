package stack

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"cuelang.org/go/cue"
)

// lenient decodes what it can of a stack that fails the schema: the
// names, dependencies and files of its apps and jobs, each field on its
// own, so that a mistake elsewhere does not hide them.
func lenient(v cue.Value, abs string) *Stack {
	s := &Stack{value: v, Dir: abs}
	decode := func(v cue.Value, path string, into any) {
		if f := v.LookupPath(cue.ParsePath(path)); f.Exists() {
			_ = f.Decode(into) // a field in error is reported by the schema
		}
	}
	for _, kind := range []string{"apps", "jobs"} {
		it, err := v.LookupPath(cue.ParsePath(kind)).Fields()
		if err != nil {
			continue
		}
		for it.Next() {
			name, nv := it.Selector().Unquoted(), it.Value()
			enabled := true
			decode(nv, "enabled", &enabled)
			if !enabled {
				continue
			}
			var deps []string
			decode(nv, "dependsOn", &deps)
			if kind == "jobs" {
				j := &Job{DependsOn: deps, value: nv}
				j.Name = name
				s.Jobs = append(s.Jobs, j)
				continue
			}
			a := &App{Name: name, DependsOn: deps, value: nv}
			decode(nv, "chart.path", &a.Chart.Path)
			decode(nv, "valuesFiles", &a.ValuesFiles)
			s.Apps = append(s.Apps, a)
		}
	}
	slices.SortFunc(s.Apps, func(a, b *App) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Jobs, func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// checkLenient runs, on a leniently decoded stack, the checks that need
// only names, dependencies and files.
func (s *Stack) checkLenient() Errors {
	var errs Errors
	for _, a := range s.Apps {
		errs = append(errs, s.checkAppDeps(a)...)
		errs = append(errs, s.readValuesFiles(a)...)
		if a.Chart.Path != "" {
			if e := s.checkRoot(a, "chart.path", "chart", a.Chart.Path); e != nil {
				errs = append(errs, e)
			} else if _, err := os.Stat(s.Path(a.Chart.Path)); err != nil {
				errs = append(errs, a.errAt("chart.path", "chart %s not found (paths are relative to the stack directory %s)", a.Chart.Path, s.Dir))
			}
		}
	}
	for _, j := range s.Jobs {
		for i, dep := range j.DependsOn {
			if dep != j.Name && !s.isNode(dep) {
				e := j.errAt(fmt.Sprintf("dependsOn[%d]", i), "job %s depends on %q, %s", j.Name, dep, s.notANode())
				e.Hint = s.nodeHint(dep)
				errs = append(errs, e)
			}
		}
	}
	return append(errs, s.checkCycles()...)
}
