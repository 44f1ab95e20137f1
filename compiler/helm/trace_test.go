package helm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func renderNondet(t *testing.T, values map[string]any, now *time.Time) ([]Document, error) {
	t.Helper()
	c := mustLoad(t, testChart("nondet"))
	req := baseRequest()
	req.Values = values
	req.Now = now
	return Render(context.Background(), c, req)
}

// Every traced function, in the output directly or through a function
// that hides it (b64enc, sha256sum, helm's toJson), fails the render and
// names the field, the function and its call; generated and thrown away
// (the value is set), it does not.
func TestTraceFamilies(t *testing.T) {
	type family struct {
		name, fn string
		line     int
	}
	families := []family{
		{"randAlphaNum", "randAlphaNum", 3}, {"randAlpha", "randAlpha", 4}, {"randNumeric", "randNumeric", 5},
		{"randAscii", "randAscii", 6}, {"randBytes", "randBytes", 7}, {"randInt", "randInt", 8},
		{"uuidv4", "uuidv4", 9}, {"shuffle", "shuffle", 10}, {"genCA", "genCA", 11},
		{"genCAWithKey", "genCAWithKey", 12}, {"genPrivateKey", "genPrivateKey", 13},
		{"genSelfSignedCert", "genSelfSignedCert", 14}, {"genSelfSignedCertWithKey", "genSelfSignedCertWithKey", 15},
		{"genSignedCert", "genSignedCert", 16}, {"genSignedCertWithKey", "genSignedCertWithKey", 17},
		{"bcrypt", "bcrypt", 18}, {"htpasswd", "htpasswd", 19}, {"encryptAES", "encryptAES", 20},
	}
	for _, f := range families {
		for _, through := range []string{"", "b64enc", "sha256sum", "toJson"} {
			t.Run(f.name+"/"+through, func(t *testing.T) {
				_, err := renderNondet(t, map[string]any{"family": f.name, "through": through}, nil)
				want := "chart nondet output is not deterministic:\n  ConfigMap/test-nondet data.value: from " +
					f.fn + " at nondet/templates/_helpers.tpl:" + strconv.Itoa(f.line)
				if through == "b64enc" || through == "sha256sum" {
					want += " (then " + through + ")"
				}
				var nd *NondeterminismError
				if !errors.As(err, &nd) || err.Error() != want {
					t.Fatalf("got error %v\nwant\n%s", err, want)
				}
			})
		}
		t.Run(f.name+"/discarded", func(t *testing.T) {
			docs, err := renderNondet(t, map[string]any{"family": f.name, "value": "pinned", "through": "b64enc"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(docs[0].YAML), `value: "cGlubmVk"`) {
				t.Errorf("got\n%s", docs[0].YAML)
			}
		})
	}
}

// The clock is refused unless pinned, and pinned it gives the same output
// for the same time only.
func TestTraceClock(t *testing.T) {
	for _, fam := range []struct{ name, fn string }{
		{"now", "now"}, {"nowDate", "now"}, {"date", "date"}, {"dateInZone", "dateInZone"}, {"htmlDate", "htmlDate"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			vals := map[string]any{"family": fam.name}
			_, err := renderNondet(t, vals, nil)
			if err == nil || !strings.Contains(err.Error(), fam.fn+" at nondet/templates/_helpers.tpl:") || !strings.Contains(err.Error(), "reads the clock") {
				t.Fatalf("got error %v, want %s refused", err, fam.fn)
			}
			t1, t2 := time.Unix(1_700_000_000, 0).UTC(), time.Unix(1_800_000_000, 0).UTC()
			a, err := renderNondet(t, vals, &t1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := renderNondet(t, vals, &t1)
			c, _ := renderNondet(t, vals, &t2)
			if string(a[0].YAML) != string(b[0].YAML) {
				t.Errorf("same pinned time, different output:\n%s\n%s", a[0].YAML, b[0].YAML)
			}
			if string(a[0].YAML) == string(c[0].YAML) {
				t.Errorf("different pinned times, same output:\n%s", a[0].YAML)
			}
		})
	}
}

// `mod (randNumeric 1) 2` is 0 or 1: a render twice over would miss it half
// the time. Traced, it fails every time, since a number cannot be followed.
func TestTraceLowEntropy(t *testing.T) {
	for i := range 20 {
		_, err := renderNondet(t, map[string]any{"family": "lowEntropy"}, nil)
		want := "randNumeric at nondet/templates/_helpers.tpl:26 (then mod) becomes the int64 0, which cannot be traced into the output"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("render %d: got %v, want %q", i, err, want)
		}
	}
}

// text/template's own eq, lt... cannot be wrapped: a traced value given to
// one, directly, down a pipeline or through a variable, is refused.
func TestTraceBuiltinComparisons(t *testing.T) {
	for _, tc := range []struct{ family, want string }{
		{"comparedDirect", "randNumeric at nondet/templates/_helpers.tpl:32 is given to the template's built-in eq"},
		{"comparedPipe", "randNumeric at nondet/templates/_helpers.tpl:33 is given to the template's built-in eq"},
		{"comparedVar", "randInt at nondet/templates/_helpers.tpl:34 is given to the template's built-in lt"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			_, err := renderNondet(t, map[string]any{"family": tc.family, "value": "set"}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// sprig's keys and values follow Go's random map order; galley sorts them,
// values in the order of their keys.
func TestTraceMapOrder(t *testing.T) {
	for i := range 10 {
		docs, err := renderNondet(t, map[string]any{"family": "mapOrder"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(docs[0].YAML), `value: "a,b,c,d,e/2,1,3,4,5"`) {
			t.Fatalf("render %d:\n%s", i, docs[0].YAML)
		}
	}
}

// The whole-word shortcut of rewriteCalls never skips a template the full
// parse would rewrite: on every template of the real charts (subcharts
// included) and of the test charts, and on names inside other words.
func TestMentionsTracedSkipsOnlyUntraced(t *testing.T) {
	texts := map[string]string{
		"inside words": `{{ .Values.update }} {{ include "validate" . }} {{ .Values.nowhere }} {{ .Values.candidate }}`,
		"a call":       `{{ now | date "2006" }}`,
		"a pipeline":   `x: {{- randAlphaNum 8|b64enc }}`,
		"parenthesis":  `{{ (genCA "x" 3).Cert }}`,
		"after a dot":  `{{ .Values.now }}`,
		"non-ASCII":    `{{ $ñow := 1 }}{{ $ñow }}`,
	}
	for _, root := range []string{sharedCharts(t), filepath.Join("..", "..", "testdata", "charts")} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.Contains(filepath.ToSlash(p), "/templates/") {
				return err
			}
			data, err := os.ReadFile(p)
			texts[p] = string(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(texts) < 500 {
		t.Fatalf("only %d templates found, want the real charts' hundreds", len(texts))
	}
	skipped := 0
	for name, text := range texts {
		count := func(string, int, string, string) int { return 0 }
		got, gotOK := rewriteCalls(name, text, count)
		want, wantOK := rewriteParsed(name, text, count)
		if got != want || gotOK != wantOK {
			t.Errorf("%s: rewriteCalls = %v, the full parse = %v", name, gotOK, wantOK)
		}
		if !mentionsTraced(text) {
			skipped++
		}
	}
	t.Logf("%d of %d templates skip the parse", skipped, len(texts))
}
