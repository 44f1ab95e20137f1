package scaffold_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/scaffold"
	"github.com/galley-dev/galley/compiler/stack"
)

// TestMinimalBuilds: the minimal stack vets and builds, in every
// environment, for every delivery engine.
func TestMinimalBuilds(t *testing.T) {
	for _, delivery := range []string{scaffold.ArgoCD, scaffold.Flux, scaffold.Both} {
		t.Run(delivery, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "team-stack")
			if _, err := scaffold.Write(dir, scaffold.Options{Delivery: delivery}); err != nil {
				t.Fatal(err)
			}
			for _, env := range []string{"", "dev", "prod"} {
				res, err := compiler.Compile(context.Background(), dir, compiler.Options{Environment: env, Getenv: func(string) string { return "" }})
				if err != nil {
					t.Fatalf("env %q: %s", env, stack.FormatError(err, dir))
				}
				if res.Stack.Name != "team-stack" {
					t.Errorf("stack name %q", res.Stack.Name)
				}
				_, argo := res.Tree.Get("argocd/root.yaml")
				flux := false
				for _, f := range res.Tree.Files() {
					flux = flux || strings.HasPrefix(f.Path, "flux/")
				}
				if argo != (delivery != scaffold.Flux) || flux != (delivery != scaffold.ArgoCD) {
					t.Errorf("env %q: argocd/ %v, flux/ %v for --delivery %s", env, argo, flux, delivery)
				}
			}
		})
	}
}

// TestEveryTemplateLoads: each template passes the schema and the checks
// that need no chart (remote charts are locked and fetched in the CLI's
// script tests).
func TestEveryTemplateLoads(t *testing.T) {
	if len(scaffold.Templates()) < 2 {
		t.Fatalf("templates: %v", scaffold.Templates())
	}
	for _, tmpl := range scaffold.Templates() {
		dir := filepath.Join(t.TempDir(), "s")
		if _, err := scaffold.Write(dir, scaffold.Options{Template: tmpl, Name: "demo", Delivery: scaffold.Both}); err != nil {
			t.Fatal(err)
		}
		s, err := stack.Load(context.Background(), dir)
		if err != nil {
			t.Fatalf("%s: %s", tmpl, stack.FormatError(err, dir))
		}
		for _, env := range s.Environments() {
			if _, err := stack.Load(context.Background(), dir, stack.WithEnvironment(env)); err != nil {
				t.Fatalf("%s %s: %s", tmpl, env, stack.FormatError(err, dir))
			}
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stack.cue"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scaffold.Write(dir, scaffold.Options{Name: "x"}); !errors.Is(err, scaffold.ErrExists) {
		t.Fatalf("over an existing stack.cue: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "stack.cue")); string(b) != "package x\n" {
		t.Fatal("stack.cue overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "charts")); err == nil {
		t.Fatal("wrote charts/ although it refused")
	}
	for name, o := range map[string]scaffold.Options{
		"bad name":     {Name: "Bad_Name"},
		"bad delivery": {Name: "x", Delivery: "spinnaker"},
		"bad template": {Name: "x", Template: "nope"},
		"bad registry": {Name: "x", Registry: "oci://host/repo:tag"},
	} {
		if _, err := scaffold.Write(filepath.Join(t.TempDir(), "d"), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
