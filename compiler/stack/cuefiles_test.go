package stack

import (
	"maps"
	"strconv"
	"testing"
)

func TestAttrArgs(t *testing.T) {
	for _, tc := range []struct {
		body string
		want map[string]string
	}{
		{`file="a.json"`, map[string]string{"file": "a.json"}},
		{`file=a.json, type=json`, map[string]string{"file": "a.json", "type": "json"}},
		{` glob = "conf/*.json" ,allowEmptyGlob`, map[string]string{"glob": "conf/*.json"}},
		{`file="a,b.json"`, map[string]string{"file": "a,b.json"}},
		{`file="a\",b.json"`, map[string]string{"file": `a",b.json`}},
		{``, map[string]string{}},
	} {
		if got := attrArgs(tc.body); !maps.Equal(got, tc.want) {
			t.Errorf("attrArgs(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

// FuzzAttrArgs: any body parses without panicking, and a quoted file name
// among other arguments comes back as written.
func FuzzAttrArgs(f *testing.F) {
	f.Add(`type=json`, "a,b.json")
	f.Add(`glob="*.yaml", allowEmptyGlob`, `x"y`)
	f.Fuzz(func(t *testing.T, body, file string) {
		attrArgs(body)
		got := attrArgs("type=json, file=" + strconv.Quote(file) + ", x=1")
		if got["file"] != file {
			t.Errorf("file %q read back as %q", file, got["file"])
		}
	})
}
