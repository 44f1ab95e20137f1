package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler/stack"
)

// rootLayout builds, under a temporary directory $T:
//
//	$T/repo/.git                    a directory or a file, as git says, or none
//	$T/repo/charts/web/             a chart inside the repository
//	$T/repo/values/ok.yaml
//	$T/repo/stacks/app/stack.cue    the stack, with the given app fields
//	$T/outside/chart/               a chart outside it
//	$T/outside/values.yaml, key.pub, mod/main.tf
//
// and the links of the case, relative to the stack directory. It returns
// $T with its links resolved, as errors print it, and the stack directory.
func rootLayout(t *testing.T, git string, links map[string]string) (string, string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chart := "apiVersion: v2\nname: web\nversion: 0.1.0\n"
	files := map[string]string{
		"repo/charts/web/Chart.yaml": chart,
		"repo/values/ok.yaml":        "replicas: 2\n",
		"outside/chart/Chart.yaml":   chart,
		"outside/values.yaml":        "password: hunter2\n",
		"outside/key.pub":            "not read\n",
		"outside/mod/main.tf":        "variable \"x\" {}\n",
	}
	switch git {
	case "file":
		files["repo/.git"] = "gitdir: /elsewhere/.git/worktrees/repo\n"
	case "dir":
		files["repo/.git/HEAD"] = "ref: refs/heads/main\n"
	}
	for name, data := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "repo", "stacks", "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.FromSlash(target), p); err != nil {
			t.Fatal(err)
		}
	}
	return base, dir
}

const rootHint = "move the file inside the root, or, for a stack you trust, widen it with --root DIR or turn the check off with --allow-outside-root"

// TestRoot: every path a stack names must resolve, links followed, inside
// its root; the error is at the path's position and names the path, where
// it leads, the root and the flags that widen it.
func TestRoot(t *testing.T) {
	const inRepo = "(the Git repository that holds the stack)"
	for _, tc := range []struct {
		name string
		git  string // "dir" (the default), "file" or "none"
		app  string
		// top are fields of the stack beside apps.
		top   string
		links map[string]string
		root  func(base string) stack.Root
		want  string // "" for a stack that loads; $T is the temporary directory
	}{{
		name: "monorepo path inside the repository",
		app:  "\t\tchart: path: \"../../charts/web\"\n\t\tvaluesFiles: [\"../../values/ok.yaml\"]\n",
	}, {
		name: "linked worktree: .git is a file",
		git:  "file",
		app:  "\t\tchart: path: \"../../charts/web\"\n",
	}, {
		name: "no repository: the stack directory is the root",
		git:  "none",
		app:  "\t\tchart: path: \"../../charts/web\"\n",
		want: "stack.cue:8:16: stack.apps.web.chart.path: chart ../../charts/web resolves to $T/repo/charts/web, outside the root $T/repo/stacks/app (the stack directory, which is in no Git repository): " + rootHint,
	}, {
		name: "Terraform module outside",
		app:  "\t\tchart: path: \"../../charts/web\"\n",
		top:  "\tterraform: net: source: \"../../../outside/mod\"\n",
		want: "stack.cue:10:26: stack.terraform.net.source: module directory ../../../outside/mod resolves to $T/outside/mod, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name:  "link that stays inside",
		app:   "\t\tchart: path: \"web\"\n",
		links: map[string]string{"web": "../../charts/web"},
	}, {
		name: "dot-dot escape",
		app:  "\t\tchart: path: \"../../charts/web\"\n\t\tvaluesFiles: [\"../../../outside/values.yaml\"]\n",
		want: "stack.cue:9:17: stack.apps.web.valuesFiles[0]: values file ../../../outside/values.yaml resolves to $T/outside/values.yaml, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name: "absolute path",
		app:  "\t\tchart: path: \"$T/outside/chart\"\n",
		want: "stack.cue:8:16: stack.apps.web.chart.path: chart $T/outside/chart is outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name:  "link to a file outside",
		app:   "\t\tchart: path: \"../../charts/web\"\n\t\tvaluesFiles: [\"values/prod.yaml\"]\n",
		links: map[string]string{"values/prod.yaml": "../../../../outside/values.yaml"},
		want:  "stack.cue:9:17: stack.apps.web.valuesFiles[0]: values file values/prod.yaml resolves to $T/outside/values.yaml, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name:  "linked chart directory outside",
		app:   "\t\tchart: path: \"web\"\n",
		links: map[string]string{"web": "../../../outside/chart"},
		want:  "stack.cue:8:16: stack.apps.web.chart.path: chart web resolves to $T/outside/chart, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name: "missing file outside is outside, not missing",
		app:  "\t\tchart: path: \"../../charts/web\"\n\t\tvaluesFiles: [\"../../../nowhere/x.yaml\"]\n",
		want: "stack.cue:9:17: stack.apps.web.valuesFiles[0]: values file ../../../nowhere/x.yaml resolves to $T/nowhere/x.yaml, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name: "cosign key outside",
		app:  "\t\tchart: {oci: \"oci://registry.example.com/charts/web\", version: \"1.0.0\", verify: key: \"../../../outside/key.pub\"}\n",
		want: "stack.cue:8:88: stack.apps.web.chart.verify.key: key ../../../outside/key.pub resolves to $T/outside/key.pub, outside the root $T/repo " + inRepo + ": " + rootHint,
	}, {
		name: "widened with --root",
		app:  "\t\tchart: path: \"../../../outside/chart\"\n\t\tvaluesFiles: [\"../../../outside/values.yaml\"]\n",
		root: func(base string) stack.Root { return stack.Root{Dir: base} },
	}, {
		name: "--root narrower than the repository",
		app:  "\t\tchart: path: \"../../charts/web\"\n",
		root: func(base string) stack.Root { return stack.Root{Dir: filepath.Join(base, "repo", "stacks")} },
		want: "stack.cue:8:16: stack.apps.web.chart.path: chart ../../charts/web resolves to $T/repo/charts/web, outside the root $T/repo/stacks (set by --root): " + rootHint,
	}, {
		name: "--root that does not hold the stack",
		app:  "\t\tchart: path: \"../../charts/web\"\n",
		root: func(base string) stack.Root { return stack.Root{Dir: filepath.Join(base, "outside")} },
		want: "the stack directory $T/repo/stacks/app is outside the root $T/outside given by --root: the root must hold the stack",
	}, {
		name: "--allow-outside-root",
		app:  "\t\tchart: path: \"$T/outside/chart\"\n\t\tvaluesFiles: [\"../../../outside/values.yaml\"]\n",
		root: func(string) stack.Root { return stack.Root{AllowOutside: true} },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			git := tc.git
			if git == "" {
				git = "dir"
			}
			base, dir := rootLayout(t, git, tc.links)
			src := stackSource(strings.ReplaceAll(tc.app, "$T", base), tc.top)
			if err := os.WriteFile(filepath.Join(dir, "stack.cue"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			var opts []stack.Option
			if tc.root != nil {
				opts = append(opts, stack.WithRoot(tc.root(base)))
			}
			_, err := stack.Load(context.Background(), dir, opts...)
			got := ""
			if err != nil {
				got = strings.ReplaceAll(stack.FormatError(err, dir), base, "$T")
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// stackSource is a stack of one app, web, with the given fields, and the
// given top-level fields.
func stackSource(app, top string) string {
	return "package app\n\nstack: {\n\tname: \"app\"\n\tversion: \"1.0.0\"\n" +
		"\tapps: web: {\n\t\tnamespace: \"web\"\n" + app + "\t}\n" + top + "}\n"
}
