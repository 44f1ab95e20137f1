package cli

import (
	"context"
	"errors"
	"fmt"

	"strings"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/compiler/stack"
)

type vetOptions struct {
	output outputFlag
	env    string
}

// vetError is one problem in --output json form.
type vetError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

type vetResult struct {
	Valid  bool       `json:"valid"`
	Stack  string     `json:"stack,omitempty"`
	Apps   []string   `json:"apps,omitempty"`
	Errors []vetError `json:"errors,omitempty"`
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
			s, err := loadAllEnvironments(c.Context(), args[0], o.env)
			if o.output == "json" {
				return vetJSON(env, s, err)
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
	return c
}

// loadAllEnvironments loads the stack, then the stack in each environment
// (or only env), so that a mistake in any overlay is found by vet.
func loadAllEnvironments(ctx context.Context, dir, env string) (*stack.Stack, error) {
	if env != "" {
		return stack.Load(ctx, dir, stack.WithEnvironment(env))
	}
	s, err := stack.Load(ctx, dir)
	if err != nil {
		return nil, err
	}
	var all stack.Errors
	for _, e := range s.Environments() {
		_, err := stack.Load(ctx, dir, stack.WithEnvironment(e))
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

func vetJSON(env *Env, s *stack.Stack, err error) error {
	res := vetResult{Valid: err == nil}
	if err != nil {
		var errs stack.Errors
		if !errors.As(err, &errs) {
			return err // not a problem in the stack: report it as such
		}
		for _, e := range errs {
			ve := vetError{Path: e.Path, Message: e.Msg}
			if e.Pos.IsValid() {
				ve.File, ve.Line, ve.Column = stack.DisplayName(e.Pos, env.Cwd), e.Pos.Line(), e.Pos.Column()
			}
			res.Errors = append(res.Errors, ve)
		}
	} else {
		res.Stack = s.Name
		for _, a := range s.Apps {
			res.Apps = append(res.Apps, a.Name)
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
