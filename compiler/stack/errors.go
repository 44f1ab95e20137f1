package stack

import (
	stderrors "errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
)

// Error is one problem in a stack, placed in the user's CUE source.
type Error struct {
	// Pos is where the user's CUE causes the problem; it may be invalid when
	// no source position is known (a missing field, say).
	Pos token.Pos
	// Path is the CUE path of the offending value, e.g.
	// "stack.apps.airflow.dependsOn[0]".
	Path string
	Msg  string
	// Related are further positions: the schema constraint that failed, the
	// other half of a conflict.
	Related []token.Pos

	// elems is the CUE path as selectors, to place errors CUE gives no
	// position for.
	elems []string
}

func (e *Error) Error() string { return e.format("") }

func (e *Error) format(cwd string) string {
	var b strings.Builder
	if e.Pos.IsValid() {
		b.WriteString(posString(e.Pos, cwd))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	for _, p := range e.Related {
		b.WriteString("\n    ")
		b.WriteString(posString(p, cwd))
	}
	return b.String()
}

// Errors is every problem found in a stack, sorted by position. Loading
// reports them all, not just the first.
type Errors []*Error

func (es Errors) Error() string { return es.Format("") }

// Format renders the errors one per line, with file names relative to cwd
// when they are below it.
func (es Errors) Format(cwd string) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.format(cwd)
	}
	return strings.Join(lines, "\n")
}

// FormatError renders err for a terminal: stack errors with positions
// relative to cwd, anything else as it is.
func FormatError(err error, cwd string) string {
	var es Errors
	if stderrors.As(err, &es) {
		return es.Format(cwd)
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e.format(cwd)
	}
	return err.Error()
}

func (es Errors) sort() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.Filename() != b.Filename() {
			return a.Filename() < b.Filename()
		}
		if a.Line() != b.Line() {
			return a.Line() < b.Line()
		}
		if a.Column() != b.Column() {
			return a.Column() < b.Column()
		}
		return es[i].Msg < es[j].Msg
	})
	// CUE reports a conflict once per side; keep one.
	out := es[:0]
	seen := map[string]bool{}
	for _, e := range es {
		k := e.format("")
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// schemaMarker is how the embedded schema's overlay files are recognised in
// positions: they live in a cue.mod/pkg directory the user never sees.
var schemaMarker = filepath.FromSlash("/cue.mod/pkg/galley.dev/")

func isSchemaPos(p token.Pos) bool {
	return strings.Contains(p.Filename(), schemaMarker)
}

// DisplayName is how a position's file is shown to a user: relative to cwd
// when below it, and the schema by its import path.
func DisplayName(p token.Pos, cwd string) string {
	name := p.Filename()
	if i := strings.Index(name, schemaMarker); i >= 0 {
		// Name the schema by its import path: the overlay path does not
		// exist on disk.
		name = filepath.ToSlash(name[i+len("/cue.mod/pkg/"):])
	} else if cwd != "" {
		if rel, err := filepath.Rel(cwd, name); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	return name
}

func posString(p token.Pos, cwd string) string {
	name := DisplayName(p, cwd)
	if p.Line() == 0 {
		return name
	}
	return fmt.Sprintf("%s:%d:%d", name, p.Line(), p.Column())
}

// boundHints replaces the schema's regular expressions, unreadable in an
// error, with what they mean. TestBoundHints keeps it in step with the
// schema.
var boundHints = map[string]string{
	"#Name":          "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
	"#Version":       "must be a semantic version such as 1.4.0 or 1.4.0-rc.1, without +build metadata",
	"#KubeVersion":   "must be a Kubernetes version from 1.26.0 to 1.39.x, such as 1.33.0",
	"#OCIRepository": "must be oci://<registry>/<repository>, without a tag or digest",
	"#FluxDuration":  "must be a Go duration such as 10m, 1h30m or 45s",
	"#Tag":           "must be an OCI tag: letters, digits, '.', '_' and '-', at most 128 characters",
	"#JobRefName":    "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters",
	"#Duration":      "must be a Prometheus duration such as 5m, 1h or 1d12h",
	"#Severity":      "must be critical, warning or info",
	"#LabelName":     "must be a Prometheus label name: letters, digits and '_', not starting with a digit",
	"#MetricName":    "must be a Prometheus metric name: letters, digits, '_' and ':', not starting with a digit",
}

var disjunctionHeader = regexp.MustCompile(`^\d+ errors in empty disjunction:?$`)

// fromCUE turns CUE's errors into Errors, putting the user's position first
// and the schema's after it.
func fromCUE(err error) Errors {
	var out Errors
	for _, ce := range errors.Errors(err) {
		msg := message(ce)
		if disjunctionHeader.MatchString(msg) {
			continue
		}
		e := &Error{Msg: explainIncomplete(explainBound(msg)), Path: cuePath(ce.Path()), elems: ce.Path()}
		var user, schema []token.Pos
		for _, p := range errors.Positions(ce) {
			if isSchemaPos(p) {
				schema = append(schema, p)
			} else {
				user = append(user, p)
			}
		}
		if len(user) > 0 {
			e.Pos = user[0]
			e.Related = append(e.Related, user[1:]...)
		}
		e.Related = append(e.Related, schema...)
		out = append(out, e)
	}
	return dropDefaultConflicts(out)
}

// maxValueLen bounds how much of one value an error message quotes: a
// 10 MB string in a stack must not become a 10 MB error.
const maxValueLen = 200

// message is ce's message with the messages of the errors it wraps (a load
// error says "import failed" and wraps the reason), each value it quotes
// cut to maxValueLen.
func message(ce errors.Error) string {
	format, args := ce.Msg()
	msg := fmt.Sprintf(format, shortValues(args)...)
	for w := stderrors.Unwrap(ce); w != nil; w = stderrors.Unwrap(w) {
		// One link at a time, on purpose: errors.As would skip the plain
		// errors between CUE's.
		we, ok := w.(errors.Error) //nolint:errorlint
		if !ok {
			return msg + ": " + w.Error()
		}
		f, a := we.Msg()
		if m := fmt.Sprintf(f, shortValues(a)...); m != "" {
			msg += ": " + m
		}
	}
	return msg
}

func shortValues(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
		if s := fmt.Sprint(a); len(s) > maxValueLen {
			cut := maxValueLen
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			out[i] = fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
		}
	}
	return out
}

// dropDefaultConflicts removes "conflicting values" errors on paths that
// have another error too: with a `constraint | *default` field CUE reports
// the clash with the default as well as the real problem.
func dropDefaultConflicts(es Errors) Errors {
	// A path whose errors are all conflicts (an enum given a value outside
	// it) keeps them: they are the only explanation there is.
	other := map[string]bool{}
	for _, e := range es {
		if !strings.HasPrefix(e.Msg, "conflicting values") {
			other[e.Path] = true
		}
	}
	out := es[:0]
	for _, e := range es {
		if other[e.Path] && strings.HasPrefix(e.Msg, "conflicting values") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// explainBound replaces a schema regular expression in msg with its
// meaning. bounds maps definition names to their expressions; it is read
// from the schema itself (schemaBounds) so the two cannot drift.
func explainBound(msg string) string {
	for def, re := range schemaBounds() {
		lit := "(out of bound =~" + strconv.Quote(re) + ")"
		if strings.Contains(msg, lit) {
			return strings.Replace(msg, lit, "("+boundHints[def]+")", 1)
		}
	}
	return msg
}

func cuePath(elems []string) string {
	var b strings.Builder
	for i, el := range elems {
		if isIndex(el) {
			b.WriteString("[" + el + "]")
			continue
		}
		if strings.HasPrefix(el, "[") || i == 0 {
			b.WriteString(el)
			continue
		}
		b.WriteString(".")
		b.WriteString(el)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// schemaBounds reads the regular expression of each definition named in
// boundHints from the embedded schema.
var schemaBounds = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	insts := load.Instances([]string{"."}, &load.Config{
		Dir:     "/galley-schema",
		Overlay: schemaFiles("/galley-schema"),
		Package: "v1alpha1",
	})
	if len(insts) == 0 || insts[0].Err != nil {
		return out
	}
	v := cuecontext.New().BuildInstance(insts[0])
	for def := range boundHints {
		if re, ok := regexOf(v.LookupPath(cue.ParsePath(def))); ok {
			out[def] = re
		}
	}
	return out
})

func regexOf(v cue.Value) (string, bool) {
	op, args := v.Expr()
	switch op {
	case cue.RegexMatchOp:
		if len(args) == 1 {
			s, err := args[0].String()
			return s, err == nil
		}
	case cue.AndOp:
		for _, a := range args {
			if re, ok := regexOf(a); ok {
				return re, true
			}
		}
	}
	return "", false
}

var incomplete = regexp.MustCompile(`^incomplete value (.*)$`)

// explainIncomplete says plainly that a required field is missing: CUE
// reports it as an incomplete value, printing the constraint.
func explainIncomplete(msg string) string {
	m := incomplete.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	for def, re := range schemaBounds() {
		if strings.Contains(m[1], strconv.Quote(re)) {
			return missingMsg + " (it " + boundHints[def] + ")"
		}
	}
	return missingMsg
}

const missingMsg = "required field is missing"

func selectorPath(elems []string) cue.Path {
	sels := make([]cue.Selector, 0, len(elems))
	for _, el := range elems {
		if isIndex(el) {
			i, _ := strconv.Atoi(el)
			sels = append(sels, cue.Index(i))
		} else {
			sels = append(sels, cue.Str(el))
		}
	}
	return cue.MakePath(sels...)
}

// placeErrors gives errors without a position in the user's files the
// position of the closest enclosing value the user wrote: a missing field
// is reported where its struct is.
func placeErrors(errs Errors, root cue.Value) {
	for _, e := range errs {
		if e.Pos.IsValid() || len(e.elems) < 2 || e.elems[0] != Field {
			continue
		}
		if rest, ok := strings.CutPrefix(e.Msg, missingMsg); ok {
			// CUE reports a field the user wrote but that resolves to no
			// value (only a type, or a reference cycle such as a: b, b: a)
			// as it does a missing one: tell them apart.
			if p := userPos(root.LookupPath(selectorPath(e.elems[1:]))); p.IsValid() {
				e.Pos = p
				e.Msg = "has no concrete value: it is only a type, or references that never resolve to a value (a cycle such as a: b, b: a)" + rest
				continue
			}
		}
		for n := len(e.elems) - 1; n >= 1; n-- {
			if p := userPos(root.LookupPath(selectorPath(e.elems[1:n]))); p.IsValid() {
				e.Pos = p
				break
			}
		}
	}
}

// SchemaBoundsForTest exposes, for every hinted definition, the regular
// expression found in the schema ("" when none is).
func SchemaBoundsForTest() map[string]string {
	found := schemaBounds()
	out := map[string]string{}
	for def := range boundHints {
		out[def] = found[def]
	}
	return out
}
