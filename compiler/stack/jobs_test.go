package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/galley-dev/galley/compiler/jobs"
	"github.com/galley-dev/galley/compiler/stack"
)

// loadCase loads the stack of a testdata/load case, which must be valid.
func loadCase(t *testing.T, name string) *stack.Stack {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", "load", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range ar.Files {
		if f.Name == "want" {
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
	s, err := stack.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	return s
}

// TestLoadJobs checks what the summary of TestLoad leaves out: the decoded
// jobs with the schema's defaults, and sync waves across apps and jobs.
func TestLoadJobs(t *testing.T) {
	s := loadCase(t, "jobs-valid")
	var names []string
	for _, j := range s.Jobs {
		names = append(names, j.Name)
	}
	if !slices.Equal(names, []string{"backfill", "transform"}) {
		t.Fatalf("jobs %q, want backfill and transform, sorted", names)
	}

	tr := s.Job("transform")
	if tr.Kind != jobs.KindDBT || tr.Schedule != "30 2 * * 1-5" || tr.TimeZone != "Europe/Paris" {
		t.Errorf("transform: %+v", tr.Spec)
	}
	if tr.ConcurrencyPolicy != "Forbid" || tr.BackoffLimit != 2 || tr.SuccessfulJobsHistoryLimit != 3 || tr.FailedJobsHistoryLimit != 3 {
		t.Errorf("transform defaults: concurrency %s, backoff %d, history %d/%d",
			tr.ConcurrencyPolicy, tr.BackoffLimit, tr.SuccessfulJobsHistoryLimit, tr.FailedJobsHistoryLimit)
	}
	if d := tr.DBT; d == nil || d.Command != "build" || d.Target != "prod" || d.Profiles.Secret != "dbt-profiles" || d.Profiles.Key != "profiles.yml" {
		t.Errorf("transform dbt: %+v", tr.DBT)
	}
	if e := tr.Env["DBT_PASSWORD"]; e.SecretKeyRef == nil || e.SecretKeyRef.Name != "pg" {
		t.Errorf("transform env: %+v", tr.Env)
	}

	bf := s.Job("backfill")
	if bf.Kind != jobs.KindJob || bf.Schedule != "" || bf.DBT != nil || !bf.Secrets.AllowPlaintext {
		t.Errorf("backfill: %+v", bf)
	}
	if e := bf.Env["DEBUG_TOKEN"]; !e.IsLiteral() || *e.Value != "not-a-secret" {
		t.Errorf("backfill env: %+v", bf.Env)
	}
	if p := bf.Pos("image"); p.Line() != 20 {
		t.Errorf("backfill image at %v, want line 20", p)
	}

	waves := stack.Waves(s)
	want := map[string]int{"postgres": 0, "transform": 1, "backfill": 2}
	for name, w := range want {
		if waves[name] != w {
			t.Errorf("wave of %s = %d, want %d", name, waves[name], w)
		}
	}
}

func TestLoadTerraform(t *testing.T) {
	s := loadCase(t, "terraform-valid")
	var names []string
	for _, m := range s.Terraform {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"dns", "platform"}) {
		t.Fatalf("terraform modules %q, want dns and platform, sorted", names)
	}
	p := s.TerraformModule("platform")
	if p.Source != "terraform/platform" || p.Backend == nil || p.Backend.Type != "gcs" || len(p.Variables) != 2 || len(p.Providers) != 1 {
		t.Errorf("platform: %+v", p)
	}
	r, err := s.BuildTerraform(p)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range r.Files {
		files = append(files, f.Path)
	}
	// No .terraform directory, state or other leftovers.
	if want := []string{"backend.tf.json", "galley.auto.tfvars.json", "main.tf", "providers.tf.json"}; !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].Name != "bucket" {
		t.Errorf("outputs %+v", r.Outputs)
	}
	if s.TerraformModule("nope") != nil {
		t.Error("TerraformModule found a module the stack does not have")
	}
}
