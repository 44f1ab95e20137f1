package terraform

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Fields of Module an Error can blame.
const (
	FieldSource    = "source"
	FieldConfig    = "config"
	FieldVariables = "variables"
	FieldBackend   = "backend"
	FieldProviders = "providers"
)

// Error is one problem with a module, blamed on the Module field that
// causes it so that a caller can place it in the stack's source.
type Error struct {
	// Field is one of the Field constants, "" for the module as a whole.
	Field string
	// Key is the variable or provider at fault, when there is one.
	Key string
	// File is where in a Terraform file the problem is, when known: a
	// syntax error, a variable's declaration, a conflicting block.
	File *Pos
	Msg  string
}

// Pos is a position in a Terraform file. Filename is the file's path on
// disk for a file of Module.Source, and its name in the bundle (e.g.
// "main.tf.json") for a file galley generates.
type Pos struct {
	Filename string
	Line     int
	// Column is 0 when only the line is known.
	Column int
}

func (p Pos) String() string {
	if p.Column > 0 {
		return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.Filename, p.Line)
	}
	return p.Filename
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != nil {
		b.WriteString(e.File.String())
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Key != "" {
			b.WriteString("." + e.Key)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a module.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders errors by field, then file position, then message.
func (es Errors) sorted() Errors {
	pos := func(e *Error) Pos {
		if e.File == nil {
			return Pos{}
		}
		return *e.File
	}
	slices.SortStableFunc(es, func(a, b *Error) int {
		pa, pb := pos(a), pos(b)
		return cmp.Or(
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(pa.Filename, pb.Filename),
			cmp.Compare(pa.Line, pb.Line),
			cmp.Compare(pa.Column, pb.Column),
			cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return es
}
