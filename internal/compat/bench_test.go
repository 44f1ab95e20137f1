package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// BenchmarkDistribution measures push and pull of real bundles against the
// real registry on 127.0.0.1 (filesystem storage): the example stack, and
// one stack made of the six charts in ../shared/charts. Each push goes to a
// new repository, so every blob is uploaded; each pull downloads and checks
// everything.
func BenchmarkDistribution(b *testing.B) {
	for _, bc := range []struct {
		name  string
		build func(testing.TB) *bundles.Bundle
	}{
		{"example", func(tb testing.TB) *bundles.Bundle { return exampleBundle(tb).Bundle }},
		{"six-charts", sixChartsBundle},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bundle := bc.build(b)
			r := testregistry.Start(b)
			c := client()
			repos := 0
			ref := func(repo string) registry.Reference {
				ref, err := registry.ParseReference("oci://" + r.Ref(repo+":1.0.0"))
				if err != nil {
					b.Fatal(err)
				}
				return ref
			}
			b.Logf("%s: layer %d bytes, manifest %s", bc.name, bundle.LayerDescriptor.Size, bundle.Digest())
			b.Run("push", func(b *testing.B) {
				b.SetBytes(bundle.LayerDescriptor.Size)
				for b.Loop() {
					// -count reruns this function on the same registry:
					// never reuse a repository.
					repos++
					res, err := c.Push(b.Context(), bundle, ref(fmt.Sprintf("push%d", repos)))
					if err != nil {
						b.Fatal(err)
					}
					if res.BlobsPushed != 2 {
						b.Fatalf("uploaded %d blobs, want 2", res.BlobsPushed)
					}
				}
			})
			b.Run("push-unchanged", func(b *testing.B) {
				if _, err := c.Push(b.Context(), bundle, ref("again")); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := c.Push(b.Context(), bundle, ref("again")); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("pull", func(b *testing.B) {
				if _, err := c.Push(b.Context(), bundle, ref("pull")); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(bundle.LayerDescriptor.Size)
				for b.Loop() {
					if _, err := c.Pull(b.Context(), ref("pull")); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// sixChartsBundle compiles a stack of the six real charts in
// ../shared/charts, with the pinned values the reference renders use.
func sixChartsBundle(tb testing.TB) *bundles.Bundle {
	tb.Helper()
	charts := filepath.Join(filepath.Dir(repoRoot(tb)), "shared", "charts")
	if _, err := os.Stat(charts); err != nil {
		tb.Fatalf("the real chart corpus is missing: %v (it lives in ../shared/charts beside the checkout)", err)
	}
	values := func(name string) string {
		return fmt.Sprintf("valuesFiles: [%q]", filepath.Join(charts, "_values", name))
	}
	apps := []struct{ name, ns, extra string }{
		{"metabase", "bi", ""},
		{"argo-cd", "argocd", ""},
		{"opentelemetry-collector", "observability", values("opentelemetry-collector.yaml")},
		{"kube-prometheus-stack", "monitoring", values("kube-prometheus-stack.pinned.yaml") + "\nsecrets: allowPlaintext: true"},
		{"grafana", "observability", values("grafana.pinned.yaml") + "\nsecrets: allowPlaintext: true\ndependsOn: [\"kube-prometheus-stack\"]"},
		{"airflow", "orchestration", values("airflow.pinned.yaml") + "\nsecrets: allowPlaintext: true"},
	}
	var s strings.Builder
	s.WriteString("package real\n\nstack: {\n\tname: \"real-charts\"\n\tversion: \"0.1.0\"\n")
	s.WriteString("\tkubernetes: {version: \"1.37.0\", apiVersions: [\"monitoring.coreos.com/v1\"]}\n\tapps: {\n")
	for _, a := range apps {
		fmt.Fprintf(&s, "\t\t%q: {\n\t\t\tnamespace: %q\n\t\t\tchart: path: %q\n%s\n\t\t}\n", a.name, a.ns, filepath.Join(charts, a.name), a.extra)
	}
	s.WriteString("\t}\n}\n")
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stack.cue"), []byte(s.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	// The charts are named by absolute path from a temporary directory:
	// only --allow-outside-root reaches them.
	res, err := compiler.Compile(tb.Context(), dir, compiler.Options{GalleyVersion: "bench", Getenv: func(string) string { return "" }, Root: stack.Root{AllowOutside: true}})
	if err != nil {
		tb.Fatalf("compiling the six charts: %v", err)
	}
	return res.Bundle
}
