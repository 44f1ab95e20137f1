package yaml11

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// TestTagMatchesPyYAML: Tag types plain scalars as PyYAML's resolver does
// (its verdicts, recorded in testdata/pyyaml.json), but for y/Y/n/N,
// which the YAML 1.1 type repository makes bools.
func TestTagMatchesPyYAML(t *testing.T) {
	b, err := os.ReadFile("testdata/pyyaml.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Tags map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Tags) < 1000 {
		t.Fatalf("only %d verdicts in testdata/pyyaml.json", len(golden.Tags))
	}
	nonStr := 0
	for s, want := range golden.Tags {
		switch s {
		case "y", "Y", "n", "N":
			want = "bool"
		}
		if want != "str" {
			nonStr++
		}
		if got := Tag(s); got != want {
			t.Errorf("Tag(%q) = %s, PyYAML says %s", s, got, want)
		}
	}
	if nonStr < 300 {
		t.Fatalf("only %d non-string verdicts", nonStr)
	}
}

// corpus is every string of up to three characters that start or make
// YAML 1.1 types, plus the longer forms of each type.
func corpus() []string {
	var out []string
	var gen func(alpha []string, p string, n int)
	gen = func(alpha []string, p string, n int) {
		out = append(out, p)
		if n == 0 {
			return
		}
		for _, a := range alpha {
			gen(alpha, p+a, n-1)
		}
	}
	gen(strings.Split("=<~0179._-+:eExbonyNYafi!&*# \t", ""), "", 2)
	gen(strings.Split("=<~07._-+:xb \t", ""), "", 3)
	return append(out, "yes", "Yes", "NO", "Off", "null", "Null", "-.Inf", ".NaN", "2001-12-14",
		"2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-1-4 1:59:43", "2001-12-14\t21:59:43.10\tZ",
		"190:20:30", "190:20:30.15", "1_000", "0b1010", "0x_0A", "685.230_15e+03", "685_230.15", "1.2.3", "a = b")
}

// TestQuoteGoPrinters: whatever string Go's YAML printers print, after
// Quote a YAML 1.1 reader reads it as YAML 1.2 readers do, and YAML 1.2
// readers read the same values as before.
func TestQuoteGoPrinters(t *testing.T) {
	printers := map[string]func(any) ([]byte, error){
		"yaml.v2":          yaml2.Marshal,
		"yaml.v3":          yaml.Marshal,
		"sigs.k8s.io/yaml": sigsMarshal,
	}
	changed := 0
	for _, s := range corpus() {
		v := map[string]any{"k": s, s: "v", "l": []any{s, 1e6, 1e-7, 2.5, 1e21, -3e300}}
		for name, marshal := range printers {
			y, err := marshal(v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			q, err := Quote(y)
			if err != nil {
				t.Fatalf("%s %q: %v\n%s", name, s, err, y)
			}
			if err := Check(q); err != nil {
				t.Errorf("%s %q: %v\n%s", name, s, err, q)
			}
			for rname, read := range map[string]func([]byte) (any, error){"yaml.v3": read3, "yaml.v2": read2} {
				before, err1 := read(y)
				after, err2 := read(q)
				if err1 != nil && err2 == nil {
					// Go's readers refuse a plain "<<" key that is no
					// merge: quoted, they read it too.
					before = after
				}
				if err2 != nil || !reflect.DeepEqual(before, after) {
					t.Errorf("%s %q: %s reads\n%s\nas %v (%v), and the quoted\n%s\nas %v (%v)", name, s, rname, y, before, err1, q, after, err2)
				}
			}
			if string(q) != string(y) {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("Quote changed nothing: the corpus lost its cases")
	}
}

func sigsMarshal(v any) ([]byte, error) {
	// sigs.k8s.io/yaml prints through JSON, as Kubernetes tools do.
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return sigsyaml.JSONToYAML(js)
}

func read3(b []byte) (any, error) {
	var v any
	err := yaml.Unmarshal(b, &v)
	return v, err
}

func read2(b []byte) (any, error) {
	var v any
	err := yaml2.Unmarshal(b, &v)
	return v, err
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"matchType: =\n", "matchType: \"=\"\n"},
		{"=: x\n", "\"=\": x\n"},
		{"l:\n- =\n- <<\n- 0x_\n", "l:\n- \"=\"\n- \"<<\"\n- \"0x_\"\n"},
		{"a: 1e+06\nb: 1e-07\nc: 1.5e+300\nd: 1E6\n", "a: 1.0e+06\nb: 1.0e-07\nc: 1.5e+300\nd: 1.0e+6\n"},
		{"ünï: {k: =}\n", "ünï: {k: \"=\"}\n"},
		{"a: =\n---\nb: =\n", "a: \"=\"\n---\nb: \"=\"\n"},
		{"t: 2001-12-14 21:59:43.10 -5\n", "t: \"2001-12-14 21:59:43.10 -5\"\n"},
		// A YAML 1.2 string that YAML 1.1 reads as a bool.
		{"c: yes\n", "c: \"yes\"\n"},
		// Kept: already quoted, typed, or the same in both versions.
		{"a: \"=\"\nb: '<<'\nd: 1.2.3\ne: 1.5\nf: !!str =\n", "a: \"=\"\nb: '<<'\nd: 1.2.3\ne: 1.5\nf: !!str =\n"},
		{"", ""},
	} {
		got, err := Quote([]byte(tc.in))
		if err != nil {
			t.Errorf("Quote(%q): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := Quote([]byte("a: [\n")); err == nil {
		t.Error("Quote accepted invalid YAML")
	}
}

func TestCheck(t *testing.T) {
	for in, want := range map[string]string{
		"a: =\n":           `1:4: "=" is a YAML 1.1 value indicator`,
		"a: 1e+06\n":       `1:4: "1e+06" is a str in YAML 1.1 but a float in YAML 1.2`,
		"a:\n  b: 0x_\n":   `2:6: "0x_" is a int in YAML 1.1 but a str in YAML 1.2`,
		"a: yes\n":         `1:4: "yes" is a bool in YAML 1.1 but a str in YAML 1.2`,
		"a: \"=\"\nb: 1\n": "",
	} {
		err := Check([]byte(in))
		switch {
		case want == "" && err != nil:
			t.Errorf("Check(%q): %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Check(%q) = %v, want %s", in, err, want)
		}
	}
}

func TestSafe(t *testing.T) {
	for s, want := range map[string]bool{"=": false, "<<": false, "yes": true, "1": true, "abc": true, "0x_": false, "": true} {
		if got := Safe(s); got != want {
			t.Errorf("Safe(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzQuote: any string yaml.v2 prints reads back the same in both YAML
// versions once quoted.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"=", "<<", "0x_", "1:20", "a b", "2001-12-14 21:59:43.10 -5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		y, err := yaml2.Marshal(map[string]any{"k": s, s: []any{s}})
		if err != nil {
			return
		}
		q, err := Quote(y)
		if err != nil {
			t.Fatalf("%q: %v\n%s", s, err, y)
		}
		if err := Check(q); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, q)
		}
		var v map[string]any
		if err := yaml.Unmarshal(q, &v); err != nil || v["k"] != s {
			t.Fatalf("%q: read back %v (%v)", s, v, err)
		}
	})
}
