package compiler_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// jobsStack has an app, a dbt CronJob after it, a one-off Job after that,
// and a Terraform module.
var jobsStack = map[string]string{
	"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: db: {namespace: "data", chart: path: "charts/c"}
	jobs: {
		transform: {
			kind:      "dbt"
			namespace: "data"
			image:     "registry.example.com/dbt:1.9.0"
			schedule:  "0 3 * * *"
			dependsOn: ["db"]
			dbt: {target: "prod", profiles: secret: "dbt-profiles", git: repository: "https://example.com/dbt.git"}
		}
		backfill: {
			namespace: "data"
			image:     "registry.example.com/backfill:2.0.0"
			command: ["/backfill", "--all"]
			dependsOn: ["transform"]
		}
	}
	terraform: net: {
		source: "infra/net"
		variables: name: "prod"
		backend: {type: "local", config: path: "state.tfstate"}
	}
	delivery: argocd: repository: "oci://registry.example.com/team/s"
}
`,
	"charts/c/Chart.yaml":         "apiVersion: v2\nname: c\nversion: 0.1.0\n",
	"charts/c/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
	"infra/net/main.tf":           "variable \"name\" {\n  type = string\n}\n\noutput \"id\" {\n  description = \"The network.\"\n  value       = var.name\n}\n",
	"infra/net/terraform.tfstate": `{"version": 4}`,
}

func TestCompileJobsAndTerraform(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, jobsStack)
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}

	var paths []string
	for _, f := range res.Tree.Files() {
		paths = append(paths, f.Path)
	}
	want := []string{
		"apps/backfill/job-backfill.yaml",
		"apps/db/configmap-db.yaml",
		"apps/transform/cronjob-transform.yaml",
		"argocd/apps/backfill.yaml",
		"argocd/apps/db.yaml",
		"argocd/apps/project.yaml",
		"argocd/apps/transform.yaml",
		"argocd/root.yaml",
		bundles.IndexPath,
		"terraform/net/backend.tf.json",
		"terraform/net/galley.auto.tfvars.json",
		"terraform/net/main.tf",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("bundle files:\n got %q\nwant %q", paths, want)
	}
	for _, f := range res.Tree.Files() {
		if strings.HasPrefix(f.Path, "apps/") || strings.HasPrefix(f.Path, "argocd/") {
			checkObject(t, f.Path, f.Data)
		}
	}

	// Each job has an Argo CD Application, in the wave after what it
	// depends on.
	for name, wave := range map[string]string{"db": "0", "transform": "1", "backfill": "2"} {
		b, _ := res.Tree.Get("argocd/apps/" + name + ".yaml")
		var app struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Source struct {
					Path string `json:"path"`
				} `json:"source"`
				Destination struct {
					Namespace string `json:"namespace"`
				} `json:"destination"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(b, &app); err != nil {
			t.Fatal(err)
		}
		if got := app.Metadata.Annotations["argocd.argoproj.io/sync-wave"]; got != wave {
			t.Errorf("%s: sync wave %s, want %s", name, got, wave)
		}
		if app.Spec.Source.Path != "apps/"+name || app.Spec.Destination.Namespace != "data" {
			t.Errorf("%s: source %s, namespace %s", name, app.Spec.Source.Path, app.Spec.Destination.Namespace)
		}
	}

	x := res.Index
	if len(x.Apps) != 1 || len(x.Jobs) != 2 {
		t.Fatalf("index: %d apps, %d jobs; want 1 and 2", len(x.Apps), len(x.Jobs))
	}
	bf, tr := x.Jobs[0], x.Jobs[1]
	if bf.Name != "backfill" || bf.Kind != "job" || bf.Schedule != "" || bf.SyncWave != 2 || bf.Path != "apps/backfill" ||
		!slices.Equal(bf.DependsOn, []string{"transform"}) || !slices.Equal(bf.Images, []string{"registry.example.com/backfill:2.0.0"}) {
		t.Errorf("index job backfill: %+v", bf)
	}
	if tr.Name != "transform" || tr.Kind != "dbt" || tr.Schedule != "0 3 * * *" || tr.SyncWave != 1 || tr.Objects != 1 {
		t.Errorf("index job transform: %+v", tr)
	}
	if want := []string{"registry.example.com/backfill:2.0.0", "registry.example.com/dbt:1.9.0"}; !slices.Equal(x.Images, want) {
		t.Errorf("index images %q, want %q", x.Images, want)
	}
	if len(x.Terraform) != 1 {
		t.Fatalf("index terraform: %+v", x.Terraform)
	}
	tf := x.Terraform[0]
	if tf.Name != "net" || tf.Path != "terraform/net" || tf.Backend != "local" || tf.Files != 3 ||
		!slices.Equal(tf.Variables, []string{"name"}) || len(tf.Outputs) != 1 || tf.Outputs[0].Description != "The network." {
		t.Errorf("index terraform net: %+v", tf)
	}
}

// TestCompileJobErrors: what only compiling finds about jobs.
func TestCompileJobErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: db: {namespace: "data", chart: path: "charts/c"}
	jobs: db2: {namespace: "data", image: "i:1", schedule: "@daily"}
}
`,
		"charts/c/Chart.yaml":        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"charts/c/templates/cj.yaml": "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: db2\nspec:\n  schedule: '@daily'\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	want := "stack.cue:7:8: stack.jobs.db2: job db2 and app db both write CronJob db2 in namespace data: rename one"
	if err == nil || !strings.Contains(stack.FormatError(err, dir), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
