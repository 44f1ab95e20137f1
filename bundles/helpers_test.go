package bundles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

// sampleFiles is a small tree shaped like a compiled platform.
var sampleFiles = map[string]string{
	IndexPath:                         `{"apps":["web","db"]}`,
	"apps/web/deployment.yaml":        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
	"apps/web/service.yaml":           "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
	"apps/db/statefulset.yaml":        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n",
	"argocd/apps.yaml":                "kind: Application\n",
	"flux/kustomizations.yaml":        "kind: Kustomization\n",
	"monitoring/rules/db-alerts.yaml": "kind: PrometheusRule\n",
	"terraform/main.tf":               "terraform {}\n",
	"empty.txt":                       "",
}

func sampleTree(t testing.TB) *Tree {
	t.Helper()
	return treeOf(t, sampleFiles)
}

func treeOf(t testing.TB, files map[string]string) *Tree {
	t.Helper()
	tree := NewTree()
	for _, name := range sortedKeys(files) {
		if err := tree.Add(name, []byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// treeMap flattens a Tree for comparison.
func treeMap(t *Tree) map[string]string {
	m := map[string]string{}
	for _, f := range t.Files() {
		m[f.Path] = string(f.Data)
	}
	return m
}

var sampleMetadata = Metadata{
	Name:        "shop",
	Version:     "1.2.3",
	Description: "the shop platform",
	Source:      "https://example.com/shop.git",
	Revision:    "main@sha1:0123456789abcdef0123456789abcdef01234567",
	Created:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	Annotations: map[string]string{AnnotationStack: "shop"},
}

func samplePack(t testing.TB) *Bundle {
	t.Helper()
	b, err := Pack(sampleTree(t), sampleMetadata)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is one raw tar entry for building archives no Tree could produce.
type entry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

// rawTar writes entries as an uncompressed tar, exactly as given.
func rawTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("writing test tar header %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	for _, p := range parts {
		if _, err := gz.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	return gzipBytes(t, rawTar(t, entries...))
}

// listDir returns the names in dir, to check nothing was left behind.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// layerBytes reads b's layer, wherever it is held.
func layerBytes(t testing.TB, b *Bundle) []byte {
	t.Helper()
	r, err := b.OpenLayer()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
