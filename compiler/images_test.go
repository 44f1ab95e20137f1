package compiler_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
)

// TestImagesRewrittenWhereIndexed: an app's `images` rewrite an image at
// every place the bundle's image index reads (manifest.ImageFields), and
// the index lists the rewritten image, not the rendered one; an image
// volume (volumes[].image.reference) was once rewritten but not indexed.
func TestImagesRewrittenWhereIndexed(t *testing.T) {
	for _, tc := range []struct{ name, kind, spec string }{
		{"container", "Deployment", "template: {spec: {containers: [{name: c, image: 'app:1'}]}}"},
		{"init container", "StatefulSet", "template: {spec: {containers: [], initContainers: [{name: c, image: 'app:1'}]}}"},
		{"ephemeral container", "Pod", "{containers: [], ephemeralContainers: [{name: c, image: 'app:1'}]}"},
		{"image volume", "Deployment", "template: {spec: {containers: [], volumes: [{name: v, image: {reference: 'app:1'}}]}}"},
		{"cron job image volume", "CronJob", "jobTemplate: {spec: {template: {spec: {containers: [], volumes: [{name: v, image: {reference: 'app:1'}}]}}}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Pod": "v1", "CronJob": "batch/v1"}[tc.kind]
			spec := "spec: {" + tc.spec + "}"
			if tc.kind == "Pod" {
				spec = "spec: " + tc.spec
			}
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: w: {
		namespace: "web"
		chart: path: "charts/c"
		images: [{name: "app", newName: "mirror.example/app", newTag: "2"}]
	}
}
`,
				"charts/c/Chart.yaml":       "apiVersion: v2\nname: c\nversion: 0.1.0\n",
				"charts/c/templates/w.yaml": "apiVersion: " + api + "\nkind: " + tc.kind + "\nmetadata: {name: w}\n" + spec + "\n",
			})
			res, err := compiler.Compile(context.Background(), dir, opts())
			if err != nil {
				t.Fatal(err)
			}
			data, ok := res.Tree.Get("apps/w/" + strings.ToLower(tc.kind) + "-w.yaml")
			if !ok {
				t.Fatalf("no object file; files: %v", res.Tree.Files())
			}
			if !strings.Contains(string(data), "mirror.example/app:2") || strings.Contains(string(data), "app:1") {
				t.Errorf("the image is not rewritten:\n%s", data)
			}
			want := []string{"mirror.example/app:2"}
			if !slices.Equal(res.Index.Images, want) || !slices.Equal(res.Index.Apps[0].Images, want) {
				t.Errorf("index images %v, app images %v, want %v", res.Index.Images, res.Index.Apps[0].Images, want)
			}
		})
	}
}
