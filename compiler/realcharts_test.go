package compiler_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// realStack writes a stack of the six real charts in ../shared/charts,
// with the values files the reference renders use when pinned is true.
// It names the charts by absolute path from a temporary directory, outside
// any root that holds them: compile it with realStackOpts.
func realStack(t *testing.T, pinned bool) string {
	charts := sharedCharts(t)
	values := func(name string) string {
		return fmt.Sprintf("valuesFiles: [%q]", filepath.Join(charts, "_values", name))
	}
	type app struct{ name, ns, extra string }
	apps := []app{
		{"metabase", "bi", ""},
		{"argo-cd", "argocd", ""},
		{"opentelemetry-collector", "observability", values("opentelemetry-collector.yaml")},
		{"kube-prometheus-stack", "monitoring", values("kube-prometheus-stack.pinned.yaml") + "\nsecrets: allowPlaintext: true"},
		{"grafana", "observability", values("grafana.pinned.yaml") + "\nsecrets: allowPlaintext: true\ndependsOn: [\"kube-prometheus-stack\"]"},
		{"airflow", "orchestration", values("airflow.pinned.yaml") + "\nsecrets: allowPlaintext: true"},
	}
	if !pinned {
		apps[4].extra = `dependsOn: ["kube-prometheus-stack"]`
		apps[5].extra = ""
	}
	var b strings.Builder
	b.WriteString("package real\n\nstack: {\n\tname: \"real-charts\"\n\tversion: \"0.1.0\"\n")
	b.WriteString("\tkubernetes: {version: \"1.37.0\", apiVersions: [\"monitoring.coreos.com/v1\"]}\n\tapps: {\n")
	for _, a := range apps {
		fmt.Fprintf(&b, "\t\t%q: {\n\t\t\tnamespace: %q\n\t\t\tchart: path: %q\n%s\n\t\t}\n", a.name, a.ns, filepath.Join(charts, a.name), a.extra)
	}
	b.WriteString("\t}\n\tdelivery: argocd: repository: \"oci://registry.example.com/platform/real-charts\"\n}\n")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"stack.cue": b.String()})
	return dir
}

// realStackOpts compiles a realStack: with --allow-outside-root, the one
// way to reach the charts from a temporary directory.
func realStackOpts() compiler.Options {
	o := opts()
	o.Root = stack.Root{AllowOutside: true}
	return o
}

// TestRealCharts compiles one stack made of all six real charts.
func TestRealCharts(t *testing.T) {
	dir := realStack(t, true)
	res, err := compiler.Compile(context.Background(), dir, realStackOpts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	counts := map[string]int{}
	for _, f := range res.Tree.Files() {
		switch {
		case strings.HasPrefix(f.Path, "apps/"):
			counts[strings.Split(f.Path, "/")[1]]++
			checkObject(t, f.Path, f.Data)
		case strings.HasPrefix(f.Path, "argocd/"):
			checkObject(t, f.Path, f.Data)
		}
	}
	for _, a := range res.Index.Apps {
		if counts[a.Name] == 0 || counts[a.Name] != a.Objects {
			t.Errorf("app %s: %d files, index says %d objects", a.Name, counts[a.Name], a.Objects)
		}
		if a.Chart.Digest == "" || a.Chart.Version == "" {
			t.Errorf("app %s: chart not recorded in the index: %+v", a.Name, a.Chart)
		}
	}
	if len(res.Index.Apps) != 6 {
		t.Errorf("%d apps in the index, want 6", len(res.Index.Apps))
	}
	// kube-prometheus-stack keeps its CRDs in a subchart's crds/ folder.
	if _, ok := res.Tree.Get("apps/kube-prometheus-stack/customresourcedefinition-prometheuses.monitoring.coreos.com.yaml"); !ok {
		t.Error("kube-prometheus-stack CRDs missing")
	}
	if len(res.Index.Images) < 10 {
		t.Errorf("only %d images recorded: %v", len(res.Index.Images), res.Index.Images)
	}
	t.Logf("%d files, layer %d bytes, digest %s", res.Tree.Len(), res.Bundle.LayerDescriptor.Size, res.Bundle.Digest())
}

// TestRealChartsUnpinned: airflow and grafana generate passwords and keys
// unless values pin them; the build must refuse, naming the objects and
// fields, and the Secrets they put in clear.
func TestRealChartsUnpinned(t *testing.T) {
	dir := realStack(t, false)
	_, err := compiler.Compile(context.Background(), dir, realStackOpts())
	if err == nil {
		t.Fatal("unpinned charts compiled")
	}
	msg := stack.FormatError(err, dir)
	t.Log(msg)
	for _, want := range []string{
		"stack.apps.airflow.values: chart output is not deterministic",
		// Every field, named by a readable path, with the call it comes from.
		"Secret/airflow-webserver-secret-key data.webserver-secret-key: from randAlphaNum at airflow/templates/secrets/webserver-secret-key-secret.yaml:24 (then b64enc, b64enc)",
		`Deployment/airflow-webserver spec.template.metadata.annotations["checksum/webserver-secret-key"]: from randAlphaNum`,
		"Secret/airflow-fernet-key data.fernet-key: from randAlphaNum at airflow/templates/secrets/fernetkey-secret.yaml:24",
		"Secret/airflow-redis-password data.password: from randAlphaNum at airflow/templates/secrets/redis-secrets.yaml:30 (then b64enc)",
		"Secret/airflow-broker-url data.connection: from randAlphaNum at airflow/templates/secrets/redis-secrets.yaml:30 (then b64enc)",
		"stack.apps.grafana.values: chart output is not deterministic",
		"Secret/grafana data.admin-password: from randAlphaNum at grafana/templates/_helpers.tpl:136 (then b64enc)",
		`Deployment/grafana spec.template.metadata.annotations["checksum/secret"]: from randAlphaNum at grafana/templates/_helpers.tpl:136 (then b64enc, sha256sum)`,
		"stack.apps.airflow.secrets: chart airflow renders Secrets with data in plain text",
		"stack.apps.grafana.secrets: chart grafana renders Secrets with data in plain text",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
}

// TestReferencePlatform compiles the seed's reference platform on the real
// charts: apps, a dbt job, Terraform, alert packs, Argo CD and Flux in one
// bundle, every YAML file a Kubernetes object.
func TestReferencePlatform(t *testing.T) {
	sharedCharts(t)
	dir := filepath.Join(repoRoot(t), "testdata", "stacks", "reference-platform")
	o := opts()
	o.Root = realChartsRoot(t)
	res, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	seen := map[string]int{}
	for _, f := range res.Tree.Files() {
		top := strings.Split(f.Path, "/")[0]
		seen[top]++
		if strings.HasSuffix(f.Path, ".yaml") && top != "terraform" {
			checkObject(t, f.Path, f.Data)
		}
	}
	for _, dir := range []string{"apps", "argocd", "flux", "monitoring", "terraform"} {
		if seen[dir] == 0 {
			t.Errorf("no %s/ in the bundle", dir)
		}
	}
	for _, want := range []string{
		"apps/dbt-nightly/cronjob-dbt-nightly.yaml",
		"monitoring/prometheusrule-reference-platform-data-journey.yaml",
		"terraform/platform/galley.auto.tfvars.json",
		"flux/root/ocirepository.yaml",
		"argocd/apps/monitoring.yaml",
	} {
		if _, ok := res.Tree.Get(want); !ok {
			t.Errorf("%s missing", want)
		}
	}
	if len(res.Index.Jobs) != 1 || len(res.Index.Terraform) != 1 || len(res.Index.Apps) != 5 {
		t.Errorf("index: %d apps, %d jobs, %d terraform modules", len(res.Index.Apps), len(res.Index.Jobs), len(res.Index.Terraform))
	}
}

// TestRealChartsOutsideRoot: testdata/stacks/real-charts names the charts
// beside the checkout (../shared), outside its Git repository. The default
// root refuses each chart and values file at its position, naming the
// root and the flags; the checkout's parent as root (--root .., what the
// other tests and `make bench` use) accepts them.
func TestRealChartsOutsideRoot(t *testing.T) {
	sharedCharts(t)
	ctx := context.Background()
	dir := filepath.Join(repoRoot(t), "testdata", "stacks", "real-charts")
	repo, err := filepath.EvalSymlinks(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = stack.Load(ctx, dir)
	var errs stack.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("loaded with the default root, or failed otherwise: %v", err)
	}
	// Six charts and four values files.
	if len(errs) != 10 {
		t.Errorf("%d errors, want 10:\n%s", len(errs), errs)
	}
	for _, e := range errs {
		if !e.Pos.IsValid() || !strings.Contains(e.Msg, "outside the root "+repo+" (the Git repository that holds the stack)") || !strings.Contains(e.Msg, "--root DIR") || !strings.Contains(e.Msg, "--allow-outside-root") {
			t.Errorf("error without position, root or flags: %s", e)
		}
	}
	if _, err := stack.Load(ctx, dir, stack.WithRoot(realChartsRoot(t))); err != nil {
		t.Fatalf("with --root ..: %v", stack.FormatError(err, dir))
	}
}
