package crdvalidate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ArgoCDCRD reads one of Argo CD's CRDs from the argo-cd chart in the shared
// chart corpus. The files are Helm templates whose only template lines are
// whole-line {{ ... }} directives around plain YAML; dropping those lines
// gives the CRD as rendered with the chart's defaults.
func ArgoCDCRD(tb testing.TB, file string) []byte {
	tb.Helper()
	p := filepath.Join(sharedCharts(tb), "argo-cd", "templates", "crds", file)
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Skipf("argo-cd chart not available: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if tl := strings.TrimSpace(l); strings.HasPrefix(tl, "{{") && strings.HasSuffix(tl, "}}") {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

func sharedCharts(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "charts")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
