package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/golden"
)

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
			got := summarize(stack.Load(context.Background(), dir))
			got = strings.ReplaceAll(got, dir, "$DIR")
			// Schema positions move whenever the schema is edited.
			got = schemaPos.ReplaceAllString(got, "$1:L:C")
			golden.Section(t, file, ar, "want", got)
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

// TestEnvironments loads the environments case for each of its
// environments, and for one that does not exist.
func TestEnvironments(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/load/environments.txtar")
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
	s, err := stack.Load(context.Background(), dir, stack.WithEnvironment("prod"))
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	if len(s.Apps) != 1 || s.Apps[0].Name != "db" {
		t.Fatalf("prod apps = %v, want only db", s.Apps)
	}
	if got := s.Apps[0].Values["replicas"]; got != float64(3) {
		t.Errorf("prod replicas = %v, want 3", got)
	}
	if got := s.Delivery.ArgoCD.Repository; got != "oci://registry.example.com/team/demo-prod" {
		t.Errorf("prod repository = %s", got)
	}
	if got := s.Environments(); len(got) != 1 || got[0] != "prod" {
		t.Errorf("Environments() = %v", got)
	}

	_, err = stack.Load(context.Background(), dir, stack.WithEnvironment("staging"))
	if err == nil || !strings.Contains(err.Error(), `no environment "staging" (environments: prod)`) {
		t.Fatalf("unknown environment: got %v", err)
	}

	// A clash between the stack and an overlay names the overlay's line.
	if err := os.WriteFile(filepath.Join(dir, "prod.cue"), []byte("package p\n\nstack: environments: prod: apps: db: namespace: \"other\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = stack.Load(context.Background(), dir, stack.WithEnvironment("prod"))
	if err == nil || !strings.Contains(stack.FormatError(err, dir), `prod.cue:3:49: stack.apps.db.namespace: conflicting values`) {
		t.Fatalf("overlay clash: got %v", stack.FormatError(err, dir))
	}
}

// TestBoundHints keeps the readable explanations of the schema's regular
// expressions in step with the schema: each hinted definition must exist
// and be a regular expression, so its errors never show the raw pattern.
func TestBoundHints(t *testing.T) {
	for def, re := range stack.SchemaBoundsForTest() {
		if re == "" {
			t.Errorf("%s: no regular expression found in the schema", def)
		}
	}
}
