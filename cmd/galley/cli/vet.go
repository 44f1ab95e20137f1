package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

type vetOptions struct {
	rootFlags
	output outputFlag
	env    string
}

type vetResult struct {
	Valid bool     `json:"valid"`
	Stack string   `json:"stack,omitempty"`
	Apps  []string `json:"apps,omitempty"`
	// Environments are the environments checked with the stack.
	Environments []string    `json:"environments,omitempty"`
	Errors       []jsonError `json:"errors,omitempty"`
}

func newVetCmd(env *Env) *cobra.Command {
	o := &vetOptions{output: "text"}
	c := &cobra.Command{
		Use:   "vet <stack-dir>",
		Short: "Validate a stack against the schema",
		Long: `vet loads the CUE package in <stack-dir>, unifies its stack field with
galley's schema and checks what the schema cannot: dependencies between
apps, dependency cycles and chart paths. Every problem is reported, each
with the file, line and column of the CUE that causes it.`,
		Args: exactArgs(1, "a stack directory"),
		RunE: func(c *cobra.Command, args []string) error {
			root, err := o.root()
			if err != nil {
				return err
			}
			s, err := loadAllEnvironments(c.Context(), args[0], o.env, stack.WithRoot(root))
			if err == nil {
				err = checkCharts(c.Context(), env, args[0], s, o.env, stack.WithRoot(root))
			}
			if o.output == "json" {
				return vetJSON(env, s, err, o.env)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%s %s: %d apps, valid\n", s.Name, s.Version, len(s.Apps))
			if envs := s.Environments(); len(envs) > 0 && o.env == "" {
				fmt.Fprintf(env.Stdout, "environments: %s, valid\n", strings.Join(envs, ", "))
			}
			return nil
		},
	}
	registerOutput(c.Flags(), &o.output)
	c.Flags().StringVar(&o.env, "env", "", "check only this environment (default: the stack and each of its environments)")
	o.rootFlags.register(c.Flags())
	return c
}

// checkCharts checks galley.lock and the values against each chart's
// values.schema.json, for the stack and each environment (or only env):
// values differ between environments.
func checkCharts(ctx context.Context, env *Env, dir string, s *stack.Stack, only string, opts ...stack.Option) error {
	envs := []string{only}
	if only == "" {
		envs = append([]string{""}, s.Environments()...)
	}
	var all stack.Errors
	seen := map[string]bool{} // an environment's copy of a stack's problem is not news
	for _, e := range envs {
		es := s
		if e != s.Environment {
			var err error
			if es, err = stack.Load(ctx, dir, append(opts, stack.WithEnvironment(e))...); err != nil {
				return err
			}
		}
		err := compiler.CheckCharts(ctx, es, chartOptions(env, false))
		var errs stack.Errors
		switch {
		case err == nil:
		case errors.As(err, &errs):
			for _, x := range errs {
				k := fmt.Sprint(x.Pos, x.Path, x.Msg)
				if seen[k] {
					continue
				}
				seen[k] = true
				if e != "" {
					x.Msg = "environment " + e + ": " + x.Msg
				}
				all = append(all, x)
			}
		default:
			return err
		}
	}
	if len(all) > 0 {
		return all
	}
	return nil
}

// loadAllEnvironments loads the stack, then the stack in each environment
// (or only env), so that a mistake in any overlay is found by vet.
func loadAllEnvironments(ctx context.Context, dir, env string, opts ...stack.Option) (*stack.Stack, error) {
	if env != "" {
		return stack.Load(ctx, dir, append(opts, stack.WithEnvironment(env))...)
	}
	s, err := stack.Load(ctx, dir, opts...)
	if err != nil {
		return nil, err
	}
	var all stack.Errors
	for _, e := range s.Environments() {
		_, err := stack.Load(ctx, dir, append(slices.Clip(opts), stack.WithEnvironment(e))...)
		var errs stack.Errors
		switch {
		case err == nil:
		case errors.As(err, &errs):
			for _, x := range errs {
				x.Msg = "environment " + e + ": " + x.Msg
			}
			all = append(all, errs...)
		default:
			return nil, err
		}
	}
	if len(all) > 0 {
		return nil, all
	}
	return s, nil
}

func vetJSON(env *Env, s *stack.Stack, err error, only string) error {
	res := vetResult{Valid: err == nil}
	if err != nil {
		var errs stack.Errors
		if !errors.As(err, &errs) {
			return err // not a problem in the stack: report it as such
		}
		res.Errors = jsonErrors(errs, env.Cwd)
	} else {
		res.Stack = s.Name
		for _, a := range s.Apps {
			res.Apps = append(res.Apps, a.Name)
		}
		if only != "" {
			res.Environments = []string{only}
		} else {
			res.Environments = s.Environments()
		}
	}
	if werr := writeJSON(env.Stdout, res); werr != nil {
		return werr
	}
	if err != nil {
		return &exitError{code: ExitError}
	}
	return nil
}
