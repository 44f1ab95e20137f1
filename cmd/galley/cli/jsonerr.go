package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/compiler/stack"
)

// jsonError is one problem in --output json form, for every command.
type jsonError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// failure is what a command given --output json prints when it fails.
type failure struct {
	OK     bool        `json:"ok"`
	Errors []jsonError `json:"errors"`
}

// wantsJSON says whether c was asked for --output json.
func wantsJSON(c *cobra.Command) bool {
	if c == nil {
		return false
	}
	f := c.Flags().Lookup("output")
	return f != nil && f.Value.String() == "json"
}

// printedOwnResult says whether the command printed its own JSON result
// for the failure (vet does) and only asks for the exit code.
func printedOwnResult(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.err == nil
}

// jsonErrors lists the problems err holds: each stack error with its
// position, or err itself.
func jsonErrors(err error, cwd string) []jsonError {
	var es stack.Errors
	var e *stack.Error
	switch {
	case errors.As(err, &es):
	case errors.As(err, &e):
		es = stack.Errors{e}
	default:
		msg := err.Error()
		var ue *usageError
		hint := ""
		switch {
		case errors.As(err, &ue):
			hint = "run the command with --help for its usage"
		case errors.Is(err, context.Canceled):
			msg = "interrupted"
		}
		return []jsonError{{Message: msg, Hint: hint}}
	}
	out := make([]jsonError, 0, len(es))
	for _, e := range es {
		je := jsonError{Path: e.Path, Message: e.Msg, Hint: e.Hint}
		if e.Pos.IsValid() {
			je.File, je.Line, je.Column = stack.DisplayName(e.Pos, cwd), e.Pos.Line(), e.Pos.Column()
		}
		out = append(out, je)
	}
	return out
}
