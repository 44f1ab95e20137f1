package compiler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

var (
	setHint   = regexp.MustCompile(`(?m)^\s+Secret/\S+: set (\S+)(?: or \S+)* to the name of an existing Secret`)
	patchHint = regexp.MustCompile(`drop it with patches: \[(\{patch: \{.*?\}\})\]`)
)

// A hint for a plaintext Secret is proved by following it: every real
// chart that renders one, and a chart that renders its Secret whatever its
// values say (as Airbyte 2.2.0 does), builds once the values and patches
// the error suggests are added to the app.
func TestSecretHintsWork(t *testing.T) {
	charts := sharedCharts(t)
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name, chart, values string
	}{
		{"airflow", filepath.Join(charts, "airflow"), filepath.Join(charts, "_values", "airflow.pinned.yaml")},
		{"grafana", filepath.Join(charts, "grafana"), filepath.Join(charts, "_values", "grafana.pinned.yaml")},
		{"kube-prometheus-stack", filepath.Join(charts, "kube-prometheus-stack"), filepath.Join(charts, "_values", "kube-prometheus-stack.pinned.yaml")},
		{"airbyte", abs(filepath.Join("..", "testdata", "charts", "airbyte-secrets")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			build := func(extra string) error {
				app := fmt.Sprintf("namespace: \"platform\"\nchart: path: %q\n", tc.chart)
				if tc.values != "" {
					app += fmt.Sprintf("valuesFiles: [%q]\n", tc.values)
				}
				src := fmt.Sprintf("package s\n\nstack: {\n\tname: \"s\"\n\tversion: \"0.1.0\"\n\tkubernetes: {version: \"1.37.0\", apiVersions: [\"monitoring.coreos.com/v1\"]}\n\tapps: %q: {\n%s%s\n\t}\n\tdelivery: argocd: repository: \"oci://registry.example.com/p/s\"\n}\n", tc.name, app, extra)
				dir := t.TempDir()
				writeFiles(t, dir, map[string]string{"stack.cue": src})
				// The stack in a temporary directory names the charts by
				// absolute path, outside its root.
				o := opts()
				o.Root = stack.Root{AllowOutside: true}
				_, err := compiler.Compile(context.Background(), dir, o)
				if err != nil {
					return fmt.Errorf("%s", stack.FormatError(err, dir))
				}
				return nil
			}
			err := build("")
			if err == nil || !strings.Contains(err.Error(), "renders Secrets with data in plain text") {
				t.Fatalf("want a plaintext Secret error, got %v", err)
			}
			msg := err.Error()
			var extra strings.Builder
			for _, m := range setHint.FindAllStringSubmatch(msg, -1) {
				// values: a: b: c: "name", in CUE.
				fmt.Fprintf(&extra, "values: %s: \"existing-secret\"\n", strings.Join(quoteAll(strings.Split(m[1], ".")), ": "))
			}
			var patches []string
			for _, m := range patchHint.FindAllStringSubmatch(msg, -1) {
				patches = append(patches, m[1])
			}
			if len(patches) > 0 {
				fmt.Fprintf(&extra, "patches: [%s]\n", strings.Join(patches, ", "))
			}
			if extra.Len() == 0 {
				t.Fatalf("no hint to follow in\n%s", msg)
			}
			if tc.name == "airbyte" && (len(patches) != 1 || strings.Contains(msg, "set postgresql.existingSecret")) {
				t.Errorf("Airbyte's Secret: want only the delete patch, got\n%s", msg)
			}
			if err := build(extra.String()); err != nil {
				t.Fatalf("following the hints\n%s\nstill fails:\n%v", extra.String(), err)
			}
		})
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}
