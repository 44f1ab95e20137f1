package compiler

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/stack"
)

// countingCharts is a chartRenderer that counts its renders.
type countingCharts struct {
	n    int
	docs []helm.Document
	err  error
}

func (c *countingCharts) render(context.Context, *helm.Chart, helm.Request) ([]helm.Document, bool, error) {
	c.n++
	return c.docs, false, c.err
}

// countingApps is an appRenderer that counts its builds.
type countingApps struct {
	n   int
	doc []byte
	err error
}

func (c *countingApps) renderApp(_ context.Context, j *appJob) (*renderedApp, error) {
	c.n++
	if c.err != nil {
		return nil, c.err
	}
	o, err := parseObject(c.doc, "c/templates/cm.yaml")
	if err != nil {
		return nil, err
	}
	return &renderedApp{app: j.app, chart: j.chart, objects: []*Object{o}}, nil
}

const cmDoc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n"

// TestCachingCharts: the wrapper renders once, then serves the render
// from the cache as cached; a render that failed is not stored.
func TestCachingCharts(t *testing.T) {
	ctx := context.Background()
	cache := newRenderCache(t.TempDir(), "v1.0.0")
	ch := &helm.Chart{Name: "c", Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
	req := helm.Request{ReleaseName: "r", Namespace: "n", Values: map[string]any{"a": "1"}}
	inner := &countingCharts{docs: []helm.Document{{Source: "c/templates/cm.yaml", YAML: []byte(cmDoc)}}}
	c := cachingCharts{inner: inner, cache: cache}
	for i, wantCached := range []bool{false, true, true} {
		docs, cached, err := c.render(ctx, ch, req)
		if err != nil || cached != wantCached || inner.n != 1 || !reflect.DeepEqual(docs, inner.docs) {
			t.Fatalf("render %d: cached %v, err %v, %d inner renders, docs %v; want cached %v, 1 inner render, docs %v",
				i, cached, err, inner.n, docs, wantCached, inner.docs)
		}
	}

	boom := errors.New("boom")
	inner.err, inner.n = boom, 0
	req.Values = map[string]any{"a": "2"}
	for i := range 2 {
		if _, cached, err := c.render(ctx, ch, req); !errors.Is(err, boom) || cached {
			t.Fatalf("failed render %d: cached %v, err %v", i, cached, err)
		}
	}
	if inner.n != 2 {
		t.Errorf("a failed render was served from the cache: %d inner renders, want 2", inner.n)
	}
}

// TestCachingApps: the wrapper builds an app once, then serves its
// objects, printed as the build printed them, from its app entry; an app
// whose build failed (a check refused it) is built again.
func TestCachingApps(t *testing.T) {
	ctx := context.Background()
	cache := newRenderCache(t.TempDir(), "v1.0.0")
	j := &appJob{
		app:   &stack.App{Name: "a", Namespace: "n"},
		chart: &helm.Chart{Name: "c", Digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
		req:   helm.Request{ReleaseName: "a", Namespace: "n"},
	}
	inner := &countingApps{doc: []byte(cmDoc)}
	c := cachingApps{inner: inner, cache: cache}
	var first []byte
	for i, wantCached := range []bool{false, true} {
		r, err := c.renderApp(ctx, j)
		if err != nil || r.cached != wantCached || inner.n != 1 || len(r.objects) != 1 {
			t.Fatalf("build %d: %+v, err %v, %d inner builds; want cached %v, 1 inner build, 1 object", i, r, err, inner.n, wantCached)
		}
		y, err := r.objects[0].YAML()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = y
		} else if !bytes.Equal(y, first) || r.objects[0].ID() != "ConfigMap/cm" {
			t.Errorf("cached object %s:\n%s\nwant ConfigMap/cm:\n%s", r.objects[0].ID(), y, first)
		}
	}

	refused := errors.New("refused")
	inner.err, inner.n = refused, 0
	j.req.Values = map[string]any{"changed": true}
	for range 2 {
		if _, err := c.renderApp(ctx, j); !errors.Is(err, refused) {
			t.Fatalf("err %v, want %v", err, refused)
		}
	}
	if inner.n != 2 {
		t.Errorf("a refused app was served from the cache: %d inner builds, want 2", inner.n)
	}
}
