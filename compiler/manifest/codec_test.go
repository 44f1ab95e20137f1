package manifest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// TestYAMLMatchesJSONToYAML: Object.YAML gives the bytes (or the error) of
// the JSON round trip it replaces, for every object of the real charts and
// the example stack, and for the values the round trip treats specially.
func TestYAMLMatchesJSONToYAML(t *testing.T) {
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join("..", "..", "..", "shared", "charts")); err != nil {
		t.Fatalf("the real chart corpus is missing: %v (it lives in ../shared/charts beside the checkout)", err)
	}
	for _, dir := range []string{
		filepath.Join("..", "..", "testdata", "stacks", "real-charts"),
		filepath.Join("..", "..", "examples", "data-platform"),
	} {
		// ../../.. holds the checkout and ../shared/charts: the root the
		// real-charts stack needs (--root .. from the checkout).
		res, err := compiler.Compile(ctx, dir, compiler.Options{Getenv: func(string) string { return "" }, Root: stack.Root{Dir: filepath.Join("..", "..", "..")}})
		if err != nil {
			t.Fatal(stack.FormatError(err, dir))
		}
		// The objects, read back from the bundle: what Object.YAML wrote.
		n := 0
		for _, f := range res.Tree.Files() {
			if !strings.HasPrefix(f.Path, "apps/") {
				continue
			}
			o, err := manifest.Parse(f.Data, f.Path)
			if err != nil || o == nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			n++
			if !manifest.YAMLReady(o.Body) {
				t.Errorf("%s: %s takes the slow way", dir, o.ID())
			}
			sameYAML(t, o)
		}
		if n < 10 {
			t.Fatalf("%s: only %d objects", dir, n)
		}
	}

	num := func(s string) json.Number { return json.Number(s) }
	for name, v := range map[string]any{
		"ints":            []any{num("0"), num("-0"), num("42"), num("-7"), num("9223372036854775807"), num("-9223372036854775808")},
		"beyond int64":    []any{num("9223372036854775808"), num("18446744073709551615"), num("18446744073709551616"), num("-9223372036854775809")},
		"floats":          []any{num("1.0"), num("0.1"), num("1e+06"), num("1E6"), num("-2.5e-300"), num("1.7976931348623157e308"), num("0.30000000000000004"), num("1e5"), num("1E+2"), num("-1.5E-3"), num("0.0"), num("1e-400"), num("123456789012345678901234567890.5")},
		"float overflow":  num("1e400"),
		"not json number": []any{num("0x10"), num("+1"), num(" 1"), num(".5"), num(""), num("1_000")},
		"scalars":         []any{true, false, nil, "", "true", "null", "~", "1", "0x10", "1e3", ".inf", "yes", "no", "2001-12-14", "-", ": x", "#c", "'q'", "\"dq\""},
		"text":            []any{"a\nb\n", "tab\there", "\x00\x01\x1f", "<>&", "\u2028\u2029", "ünïcødé ✓ 🚀", "  lead", "trail  ", "multi\n\nline\n  indented\n"},
		"refused chars":   []any{"del\x7f", "c1\u0080", "nel\u0085", "bom\ufeff", "nonchar\uffff", "\ufffe"},
		"invalid utf-8":   []any{"\xff", "a\xc3(b"},
		"keys":            map[string]any{"<<": map[string]any{"a": num("1")}, "b": "c"},
		"odd keys":        map[string]any{"": "empty", "1": "num", "true": "bool", "a.b/c": "x", "k\x7f": "del", "10": "ten", "9": "nine"},
		"empty":           map[string]any{"m": map[string]any{}, "l": []any{}, "nm": map[string]any(nil), "nl": []any(nil)},
		"nested":          map[string]any{"a": []any{map[string]any{"b": []any{[]any{num("1"), "2"}}}}},
		"other types":     map[string]any{"int": 3, "float": 1.5, "strings": []string{"a"}},
		"nan":             map[string]any{"f": json.Number("NaN")},
	} {
		o := &manifest.Object{APIVersion: "v1", Kind: "ConfigMap", Name: name, Body: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": v}}
		t.Run(name, func(t *testing.T) { sameYAML(t, o) })
	}
}

// TestParseMatchesYAMLToJSON: Parse gives the object (or the
// error) of the JSON round trip it replaces, for every document the stock
// helm CLI renders from the real charts and for the YAML that round trip
// treats specially.
func TestParseMatchesYAMLToJSON(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join("..", "..", "..", "shared", "charts", "_golden", "*.yaml"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no reference renders in ../shared/charts/_golden: %v", err)
	}
	n := 0
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			n++
			name := fmt.Sprintf("%s#%d", filepath.Base(g), i)
			sameParse(t, name, doc)
			var y any
			if err := yaml2.Unmarshal([]byte(doc), &y); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if _, ok := manifest.JSONValue(y); y != nil && !ok {
				t.Errorf("%s takes the slow way", name)
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d documents in the reference renders", n)
	}

	head := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
	for name, doc := range map[string]string{
		"ints":            head + "data: [0, -0, 42, -7, 0x1F, 0o17, 017, 1_000, 9223372036854775807, -9223372036854775808]",
		"beyond int64":    head + "data: [9223372036854775808, 18446744073709551615, 18446744073709551616, -9223372036854775809]",
		"floats":          head + "data: [1.0, 0.1, -0.0, 1e6, 1e+21, 1e20, 0.000001, 0.0000001, 1.5e-300, 6.02e23, .5, 1.7976931348623157e308, 0.30000000000000004]",
		"special floats":  head + "data: [.inf, -.Inf, .nan]",
		"scalars":         head + "data: [true, false, yes, no, on, off, ~, null, '', \"\", 2001-12-14, 2001-12-14t21:59:43.10-05:00, 12:30:00, 1:20]",
		"strings":         head + "data: {a: \"\\xff\\x00\\t\\u2028<>&\", b: ünïcødé ✓ 🚀, c: \"\\x7f\\x85\\ufeff\"}",
		"block text":      head + "data:\n  s: |\n    line one\n      indented\n  f: >-\n    folded\n    text\n",
		"binary":          head + "data: {b: !!binary /w==, c: !!binary aGk=}",
		"odd keys":        head + "data: {1: a, 2.5: b, true: c, null: d, [x]: e}",
		"int key":         head + "data: {1: a}",
		"float key":       head + "data: {1.5: a}",
		"bool key":        head + "data: {true: a}",
		"merge":           head + "base: &b {x: 1, y: 2}\ndata: {<<: *b, y: 3}",
		"anchors":         head + "a: &a [1, {b: 2}]\nc: *a",
		"duplicate keys":  head + "data: {a: 1, a: 2}",
		"empty":           head + "data: {m: {}, l: [], n: ~}",
		"nested":          head + "data: [[[]], [{}], {a: [{b: [1, '2', 3.0]}]}]",
		"list":            "- a\n- b\n",
		"scalar":          "just text\n",
		"number":          "42\n",
		"empty document":  "",
		"comments only":   "# Source: chart/templates/x.yaml\n# nothing\n",
		"null document":   "~\n",
		"invalid":         "a: [\n",
		"tab indent":      "a:\n\tb: c\n",
		"not an object":   "apiVersion: v1\nkind: ConfigMap\n",
		"name not string": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 1}\n",
	} {
		sameParse(t, name, doc)
	}
}

func sameParse(t *testing.T, name, doc string) {
	t.Helper()
	got, gerr := manifest.Parse([]byte(doc), "src")
	want, werr := manifest.ParseViaJSON([]byte(doc), "src")
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Errorf("%s: error %v, the JSON way gives %v", name, gerr, werr)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: parsed\n%#v\nthe JSON way gives\n%#v", name, got, want)
	}
}

func sameYAML(t *testing.T, o *manifest.Object) {
	t.Helper()
	got, gerr := o.YAML()
	want, werr := manifest.YAMLViaJSON(o)
	if (gerr == nil) != (werr == nil) {
		t.Errorf("%s: error %v, the JSON way gives %v", o.ID(), gerr, werr)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: YAML differs from the JSON way:\n%s\nwant:\n%s", o.ID(), got, want)
	}
}

// BenchmarkYAML11Check measures what YAML 1.1 safety adds to printing the
// objects of the real charts: the walk that decides whether an object
// needs quoting, against printing it.
func BenchmarkYAML11Check(b *testing.B) {
	res, err := compiler.Compile(context.Background(), filepath.Join("..", "..", "testdata", "stacks", "real-charts"), compiler.Options{Getenv: func(string) string { return "" }, Root: stack.Root{Dir: filepath.Join("..", "..", "..")}})
	if err != nil {
		b.Fatal(stack.FormatError(err, ""))
	}
	var bodies []map[string]any
	for _, f := range res.Tree.Files() {
		if o, err := manifest.Parse(f.Data, f.Path); err == nil && o != nil && strings.HasPrefix(f.Path, "apps/") {
			bodies = append(bodies, o.Body)
		}
	}
	b.Run("print", func(b *testing.B) {
		for b.Loop() {
			for _, body := range bodies {
				if _, err := yaml2.Marshal(body); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			for _, body := range bodies {
				manifest.YAML11Clean(body)
			}
		}
	})
}
