package manifest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// FuzzCodec: on any input, Parse's fast path gives the object or the
// error the reference decoding (sigs.k8s.io/yaml to JSON) gives, and the
// object prints as the reference encoding prints it.
func FuzzCodec(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: '1', b: \"yes\"}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: n\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers: [{name: c, image: 'nginx:1.27'}]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: [0x1F, 1e400, .nan, 9223372036854775808, -0.0, 1_000, 2001-12-14]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbase: &b {x: 1}\ndata: {<<: *b, '=': '<<', k: \"\\x7f\\ufeff\"}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {1: a, true: b, [x]: c}\n",
		"a: [\n",
		"~\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, gerr := Parse(doc, "src")
		want, werr := parseViaJSON(doc, "src")
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("Parse: error %v, the reference gives %v", gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse gives\n%#v\nthe reference gives\n%#v", got, want)
		}
		if got == nil {
			return
		}
		y, yerr := got.YAML()
		ry, ryerr := got.yamlViaJSON()
		if (yerr == nil) != (ryerr == nil) {
			t.Fatalf("YAML: error %v, the reference gives %v", yerr, ryerr)
		}
		if !bytes.Equal(y, ry) {
			t.Fatalf("YAML gives\n%s\nthe reference gives\n%s", y, ry)
		}
	})
}
