// Package yaml11 makes YAML that YAML 1.1 readers read as YAML 1.2 readers
// do. Go's YAML libraries print a string plain whenever they would read it
// back as a string, but YAML 1.1 (PyYAML, hence Ansible's k8s module and
// the Python yq; SnakeYAML) gives more plain scalars a type: `=` is a
// value key, `<<` a merge key, `0x_` an int, `2001-12-14 1:2:3 -5` a
// timestamp. Such a scalar is refused or misread there; quoted, every
// reader reads the same string.
package yaml11

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	yaml2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"
)

// The implicit types of the YAML 1.1 type repository (yaml.org/type), as
// PyYAML's resolver spells them (testdata/pyyaml.json holds its verdicts),
// plus y/Y/n/N, which the repository's bool type has and PyYAML leaves out.
var (
	words = map[string]string{
		"y": "bool", "Y": "bool", "n": "bool", "N": "bool",
		"yes": "bool", "Yes": "bool", "YES": "bool", "no": "bool", "No": "bool", "NO": "bool",
		"true": "bool", "True": "bool", "TRUE": "bool", "false": "bool", "False": "bool", "FALSE": "bool",
		"on": "bool", "On": "bool", "ON": "bool", "off": "bool", "Off": "bool", "OFF": "bool",
		"~": "null", "null": "null", "Null": "null", "NULL": "null", "": "null",
		"<<": "merge", "=": "value",
		"!": "yaml", "&": "yaml", "*": "yaml",
		".inf": "float", ".Inf": "float", ".INF": "float",
		"+.inf": "float", "+.Inf": "float", "+.INF": "float",
		"-.inf": "float", "-.Inf": "float", "-.INF": "float",
		".nan": "float", ".NaN": "float", ".NAN": "float",
	}
	float11 = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?` +
		`|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?` +
		`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*)$`)
	int11 = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+` +
		`|[-+]?0[0-7_]+` +
		`|[-+]?(?:0|[1-9][0-9_]*)` +
		`|[-+]?0x[0-9a-fA-F_]+` +
		`|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	timestamp11 = regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]` +
		`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
)

// Tag is the type a YAML 1.1 reader gives the plain scalar s: str, int,
// float, bool, null, timestamp, merge, value or yaml (the last two PyYAML
// refuses to construct). It is cheap for the strings Kubernetes objects
// are made of: only those starting like a number or short enough to be a
// bool or a null are matched against anything.
func Tag(s string) string {
	if len(s) <= 6 {
		if t, ok := words[s]; ok {
			return t
		}
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9', c == '-', c == '+', c == '.':
		switch {
		case int11.MatchString(s):
			return "int"
		case float11.MatchString(s):
			return "float"
		case c >= '0' && c <= '9' && timestamp11.MatchString(s):
			return "timestamp"
		}
	}
	return "str"
}

// Plain reports whether a YAML 1.1 reader reads the plain scalar s as the
// string s.
func Plain(s string) bool { return Tag(s) == "str" }

// Safe reports whether Go's YAML libraries (yaml.v2, which
// sigs.k8s.io/yaml uses, and yaml.v3) print s in a form YAML 1.1 readers
// read as s: either plain and Plain, or quoted.
func Safe(s string) bool {
	if Plain(s) {
		return true
	}
	y, err := yaml2.Marshal(s)
	return err == nil && len(y) > 0 && y[0] == '"'
}

// Quote rewrites, in the YAML stream doc, every plain scalar that a YAML
// 1.1 reader would read otherwise than a YAML 1.2 reader: a string such as
// `=` or `<<` is double-quoted; a float printed without a dot or an
// exponent sign (Go prints 1e+06, which YAML 1.1 reads as a string) gets
// them (1.0e+06). Everything else keeps its bytes, so a stream without such
// a scalar comes back unchanged.
func Quote(doc []byte) ([]byte, error) {
	nodes, err := parse(doc)
	if err != nil {
		return nil, err
	}
	var fix []edit
	for _, n := range nodes {
		fix = appendEdits(fix, n)
	}
	if len(fix) == 0 {
		return doc, nil
	}
	sort.Slice(fix, func(i, j int) bool {
		if fix[i].n.Line != fix[j].n.Line {
			return fix[i].n.Line < fix[j].n.Line
		}
		return fix[i].n.Column < fix[j].n.Column
	})
	var out bytes.Buffer
	out.Grow(len(doc) + 4*len(fix))
	line, start := 1, 0 // start is the offset of line
	done := 0           // bytes of doc already copied
	for _, f := range fix {
		n := f.n
		for line < n.Line {
			i := bytes.IndexByte(doc[start:], '\n')
			if i < 0 {
				return nil, fmt.Errorf("quoting %q: line %d is past the end of the document", n.Value, n.Line)
			}
			start += i + 1
			line++
		}
		off := start
		for c := 1; c < n.Column && off < len(doc); c++ {
			_, size := utf8.DecodeRune(doc[off:])
			off += size
		}
		if off < done || !bytes.HasPrefix(doc[off:], []byte(n.Value)) {
			return nil, fmt.Errorf("quoting %q at line %d, column %d: the scalar is not where the parser put it", n.Value, n.Line, n.Column)
		}
		out.Write(doc[done:off])
		out.WriteString(f.text)
		done = off + len(n.Value)
	}
	out.Write(doc[done:])
	return out.Bytes(), nil
}

func parse(doc []byte) ([]*yaml.Node, error) {
	var out []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("reading YAML: %w", err)
		}
		out = append(out, &n)
	}
}

// edit replaces the text of a plain scalar.
type edit struct {
	n    *yaml.Node
	text string
}

func appendEdits(out []edit, n *yaml.Node) []edit {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Style != 0 {
			break
		}
		switch n.Tag {
		case "!!str", "!!merge":
			// Go's printers never mean a merge key: `<<` was a string.
			if !Plain(n.Value) {
				out = append(out, edit{n, doubleQuoted(n.Value)})
			}
		case "!!float":
			if f, ok := float11Form(n.Value); ok && f != n.Value {
				out = append(out, edit{n, f})
			}
		}
	case yaml.AliasNode:
		// An alias repeats its anchor's node, which is edited where it is.
	default:
		for _, c := range n.Content {
			out = appendEdits(out, c)
		}
	}
	return out
}

var exponent = regexp.MustCompile(`^([-+]?[0-9][0-9_]*)(\.[0-9_]*)?[eE]([-+]?)([0-9]+)$`)

// float11Form is s, a float YAML 1.2 reads, in a form YAML 1.1 reads as the
// same float: its exponent form needs a dot and a signed exponent.
func float11Form(s string) (string, bool) {
	if Tag(s) == "float" {
		return s, true
	}
	m := exponent.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	frac, sign := m[2], m[3]
	if frac == "" || frac == "." {
		frac = ".0"
	}
	if sign == "" {
		sign = "+"
	}
	f := m[1] + frac + "e" + sign + m[4]
	return f, Tag(f) == "float"
}

// Check reads the YAML stream doc as a YAML 1.1 reader does and reports
// every plain scalar it types otherwise than a YAML 1.2 reader, or cannot
// construct at all (`=`), with its line and column.
func Check(doc []byte) error {
	nodes, err := parse(doc)
	if err != nil {
		return err
	}
	var problems []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Style == 0 {
			t11 := Tag(n.Value)
			switch t12 := strings.TrimPrefix(n.Tag, "!!"); {
			case t11 == "value" || t11 == "yaml":
				problems = append(problems, fmt.Sprintf("%d:%d: %q is a YAML 1.1 %s indicator, which PyYAML refuses to read", n.Line, n.Column, n.Value, t11))
			case t11 != t12:
				problems = append(problems, fmt.Sprintf("%d:%d: %q is a %s in YAML 1.1 but a %s in YAML 1.2", n.Line, n.Column, n.Value, t11, t12))
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	if len(problems) > 0 {
		return fmt.Errorf("YAML 1.1 readers read it differently:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// doubleQuoted quotes s, which Plain refused, so is made of ASCII letters,
// digits, punctuation, spaces and tabs.
func doubleQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
