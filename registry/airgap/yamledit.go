package airgap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yamlScalar is one string value of a YAML stream (never a mapping key).
type yamlScalar struct {
	node *yaml.Node
	// path leads from the document root to the value: mapping keys and
	// sequence indexes.
	path []string
	// kind and apiVersion are the document's, for Kubernetes objects.
	kind, apiVersion string
}

// key is the mapping key the value belongs to (an index for a sequence
// item).
func (s yamlScalar) key() string {
	if len(s.path) == 0 {
		return ""
	}
	return s.path[len(s.path)-1]
}

// field writes the path as kubectl explain does: spec.containers[0].image.
func (s yamlScalar) field() string {
	var b strings.Builder
	for _, p := range s.path {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// at reports whether the path is exactly want, with "*" matching any one
// element.
func (s yamlScalar) at(want ...string) bool {
	if len(s.path) != len(want) {
		return false
	}
	for i, w := range want {
		if w != "*" && w != s.path[i] {
			return false
		}
	}
	return true
}

// scalars returns every string scalar value of every document of data, in
// document order. Aliases are not followed: the anchored value is visited
// once, where it is written.
func scalars(data []byte) ([]yamlScalar, error) {
	var out []yamlScalar
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
			root = root.Content[0]
		}
		var kind, apiVersion string
		if root.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(root.Content); i += 2 {
				switch root.Content[i].Value {
				case "kind":
					kind = root.Content[i+1].Value
				case "apiVersion":
					apiVersion = root.Content[i+1].Value
				}
			}
		}
		var walk func(n *yaml.Node, path []string)
		walk = func(n *yaml.Node, path []string) {
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					walk(n.Content[i+1], append(slices.Clip(path), n.Content[i].Value))
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					walk(c, append(slices.Clip(path), strconv.Itoa(i)))
				}
			case yaml.ScalarNode:
				if n.ShortTag() == "!!str" {
					out = append(out, yamlScalar{node: n, path: path, kind: kind, apiVersion: apiVersion})
				}
			}
		}
		walk(root, nil)
	}
}

// replaceScalars returns data with the value of each scalar in edits
// replaced, touching no other byte: comments, key order, indentation and
// quoting stay as they were. The scalars must come from scalars(data). A
// scalar written in a way that cannot be replaced in place (block styles,
// escapes) is an error naming its line.
func replaceScalars(data []byte, edits map[*yaml.Node]string) ([]byte, error) {
	if len(edits) == 0 {
		return data, nil
	}
	lineStarts := []int{0}
	for i, c := range data {
		if c == '\n' {
			lineStarts = append(lineStarts, i+1)
		}
	}
	type span struct {
		start, end int
		text       string
	}
	var spans []span
	for n, value := range edits {
		if n.Line < 1 || n.Line > len(lineStarts) || n.Column < 1 {
			return nil, fmt.Errorf("line %d: value %q has no position", n.Line, n.Value)
		}
		// yaml.v3 counts columns in characters, not bytes.
		off := lineStarts[n.Line-1]
		for range n.Column - 1 {
			_, size := utf8.DecodeRune(data[off:])
			off += size
		}
		var quote string
		switch n.Style {
		case 0:
		case yaml.DoubleQuotedStyle:
			quote = `"`
		case yaml.SingleQuotedStyle:
			quote = `'`
		default:
			return nil, fmt.Errorf("line %d: value %q is a block scalar, which cannot be rewritten in place", n.Line, n.Value)
		}
		raw := quote + n.Value + quote
		if !bytes.HasPrefix(data[off:], []byte(raw)) || strings.ContainsAny(n.Value, `\"'`+"\n") {
			return nil, fmt.Errorf("line %d: value %q is not written as a plain or simply quoted string, which cannot be rewritten in place", n.Line, n.Value)
		}
		spans = append(spans, span{off, off + len(raw), quote + value + quote})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b bytes.Buffer
	b.Grow(len(data))
	last := 0
	for _, s := range spans {
		if s.start < last {
			return nil, fmt.Errorf("overlapping values at byte %d", s.start)
		}
		b.Write(data[last:s.start])
		b.WriteString(s.text)
		last = s.end
	}
	b.Write(data[last:])
	return b.Bytes(), nil
}
