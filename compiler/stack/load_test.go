package stack_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/galley-dev/galley/compiler/stack"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/load/*.txtar")

// TestLoad runs each testdata/load/*.txtar case: the archive's files form a
// stack directory, and its "want" file is what Load reports, errors with
// positions relative to that directory, or "ok" and the decoded summary.
func TestLoad(t *testing.T) {
	cases, err := filepath.Glob("testdata/load/*.txtar")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var want []byte
			for _, f := range ar.Files {
				if f.Name == "want" {
					want = f.Data
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(f.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := summarize(stack.Load(context.Background(), dir))
			got = strings.ReplaceAll(got, dir, "$DIR")
			// Schema positions move whenever the schema is edited.
			got = schemaPos.ReplaceAllString(got, "$1:L:C")
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want" {
						ar.Files[i].Data = []byte(got)
					}
				}
				if want == nil {
					ar.Files = append(ar.Files, txtar.File{Name: "want", Data: []byte(got)})
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(want) {
				t.Errorf("Load result mismatch (run with -update to accept)\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

var schemaPos = regexp.MustCompile(`(galley\.dev/stack/v1alpha1/[a-z]+\.cue):\d+:\d+`)

func summarize(s *stack.Stack, err error) string {
	if err != nil {
		return stack.FormatError(err, "") + "\n"
	}
	var b strings.Builder
	b.WriteString("ok " + s.Name + " " + s.Version + " kubernetes " + s.Kubernetes.Version + "\n")
	waves := stack.Waves(s)
	for _, a := range s.Apps {
		b.WriteString("app " + a.Name + " ns=" + a.Namespace + " release=" + a.ReleaseName +
			" chart=" + a.Chart.Path + " deps=" + strings.Join(a.DependsOn, ",") +
			" wave=" + strconv.Itoa(waves[a.Name]) + "\n")
	}
	if d := s.Delivery.ArgoCD; d != nil {
		b.WriteString("argocd " + d.Repository + " ns=" + d.Namespace + " project=" + d.Project + " server=" + d.Server + "\n")
	}
	return b.String()
}
