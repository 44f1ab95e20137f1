package stack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
)

// Option tunes Load.
type Option func(*options)

type options struct {
	env  string
	root Root
}

// WithEnvironment loads the stack for one of its environments: the
// environment's overlay is unified into the stack.
func WithEnvironment(name string) Option {
	return func(o *options) { o.env = name }
}

// Environments lists the environments the stack declares, sorted.
func (s *Stack) Environments() []string { return s.environments }

// applyEnvironment unifies environments.<env> into the stack. It is CUE
// unification, not an override: a value an environment changes must be a
// default in the stack (`replicas: *1 | int`), and a clash between two
// concrete values is reported at both positions, the overlay's included.
func applyEnvironment(v cue.Value, env string) (cue.Value, error) {
	if env == "" {
		return v, nil
	}
	ev := v.LookupPath(cue.MakePath(cue.Str("environments"), cue.Str(env)))
	if !ev.Exists() {
		e := &Error{Path: "stack.environments", Msg: fmt.Sprintf("no environment %q", env)}
		if names := environmentNames(v); len(names) > 0 {
			e.Msg += " (environments: " + strings.Join(names, ", ") + ")"
		} else {
			e.Msg += ": the stack declares no environments"
		}
		e.Pos = userPos(v.LookupPath(cue.ParsePath("environments")))
		return v, Errors{e}
	}
	return v.Unify(ev), nil
}

func environmentNames(v cue.Value) []string {
	it, err := v.LookupPath(cue.ParsePath("environments")).Fields()
	if err != nil {
		return nil
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	sort.Strings(names)
	return names
}

// applyEnabled drops the apps an environment switches off, and refuses
// dependencies on them: the dependent app would wait forever.
func (s *Stack) applyEnabled() Errors {
	enabled := s.Apps[:0]
	disabled := map[string]bool{}
	for _, a := range s.Apps {
		if a.Enabled {
			enabled = append(enabled, a)
		} else {
			disabled[a.Name] = true
		}
	}
	s.Apps = enabled
	var errs Errors
	for _, a := range s.Apps {
		for i, d := range a.DependsOn {
			if disabled[d] {
				where := "the stack"
				if s.Environment != "" {
					where = "environment " + s.Environment
				}
				errs = append(errs, a.errAt(fmt.Sprintf("dependsOn[%d]", i),
					"app %s depends on %s, which %s disables (enabled: false)", a.Name, d, where))
			}
		}
	}
	return errs
}

// environmentRepositories gives each environment's bundle its own
// repository, <repository>-<env>, unless the environment sets one: a tag
// such as 1.4.0-prod would be a semver pre-release, which Argo CD's
// constraints and Flux's ranges skip.
func (s *Stack) environmentRepositories(base cue.Value) error {
	if s.Environment == "" {
		return nil
	}
	b, err := json.Marshal(s.Delivery)
	if err != nil {
		return fmt.Errorf("decoding delivery: %w", err)
	}
	var targets map[string]map[string]any
	if err := json.Unmarshal(b, &targets); err != nil {
		return fmt.Errorf("decoding delivery: %w", err)
	}
	changed := false
	for name, t := range targets {
		repo, ok := t["repository"].(string)
		if !ok {
			continue
		}
		baseRepo, _ := base.LookupPath(cue.MakePath(cue.Str("delivery"), cue.Str(name), cue.Str("repository"))).String()
		if repo == baseRepo {
			t["repository"] = repo + "-" + s.Environment
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err = json.Marshal(targets)
	if err != nil {
		return fmt.Errorf("encoding delivery: %w", err)
	}
	return json.Unmarshal(b, &s.Delivery)
}
