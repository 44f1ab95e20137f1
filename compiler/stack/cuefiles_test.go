package stack

import (
	"maps"
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
