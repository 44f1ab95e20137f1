package compiler

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/kustomize"
	"github.com/galley-dev/galley/compiler/stack"
)

// renderedApp is one app, rendered, patched and checked.
type renderedApp struct {
	// cached says the chart render, or the app's finished objects, came
	// from the cache.
	cached  bool
	app     *stack.App
	chart   *helm.Chart
	objects []*Object
}

// renderApp renders an app's chart twice, so that output which changes
// between runs (randAlphaNum, now, genCA...) is caught instead of bundled,
// then applies the app's patches and checks its Secrets. With a cache, an
// app whose render, patches and secrets policy are unchanged comes back
// from its app entry (appcache.go) without any of that.
func renderApp(ctx context.Context, s *stack.Stack, a *stack.App, cache *renderCache, remote chartSet) (*renderedApp, error) {
	ch, err := remote.load(s, a)
	if err != nil {
		return nil, err
	}
	values, err := appValues(s, a)
	if err != nil {
		return nil, err
	}
	req := helm.Request{
		ReleaseName:   a.ReleaseName,
		Namespace:     a.Namespace,
		Values:        values,
		KubeVersion:   s.Kubernetes.Version,
		APIVersions:   s.Kubernetes.APIVersions,
		IncludeCRDs:   a.CRDs,
		KeepTestHooks: a.Tests,
	}
	// Non-determinism and plaintext Secrets are both reported: an
	// unpinned chart usually has both problems, and fixing one should not
	// reveal the other on the next run.
	var problems stack.Errors
	ko := kustomizeOptions(a)
	marks := marksFor(s, a)
	key, appKey := "", ""
	if cache != nil {
		if key, err = cache.key(ch, req); err != nil {
			return nil, err
		}
		if appKey, err = cache.appKey(key, ko, a.Secrets, marks); err != nil {
			return nil, err
		}
		if objs, ok := cache.getApp(appKey); ok {
			return &renderedApp{app: a, chart: ch, cached: true, objects: objs}, nil
		}
	}
	first, hit := cache.get(key)
	if !hit {
		if first, err = helm.Render(ctx, ch, req); err != nil {
			if es, ok := valuesSchemaErrors(a, ch.Name, err); ok {
				return nil, es
			}
			return nil, appError(a, "chart", "%v", err)
		}
		second, err := helm.Render(ctx, ch, req)
		if err != nil {
			return nil, appError(a, "chart", "%v", err)
		}
		if err := sameRender(a, first, second); err != nil {
			problems = append(problems, err)
		} else {
			cache.put(key, first)
		}
	}

	docs := make([][]byte, len(first))
	sources := make([]string, len(first))
	for i, d := range first {
		docs[i] = d.YAML
		sources[i] = d.Source
	}
	patched, err := kustomize.Apply(docs, ko)
	if err != nil {
		return nil, appError(a, "patches", "patching chart %s: %v", ch.Name, err)
	}
	if len(patched) != len(docs) {
		// Patches may not add or remove objects, so sources stay aligned;
		// anything else would be a kustomize surprise worth knowing about.
		sources = nil
	}

	r := &renderedApp{app: a, chart: ch, cached: hit}
	for i, doc := range patched {
		src := "kustomize output"
		if sources != nil {
			src = sources[i]
		}
		o, err := parseObject(doc, src)
		if err != nil {
			return nil, appError(a, "chart", "chart %s: %v", ch.Name, err)
		}
		if o != nil {
			r.objects = append(r.objects, o)
		}
	}
	if err := markObjects(a, marks, r.objects); err != nil {
		problems = append(problems, err)
	}
	if err := checkSecrets(a, ch, r.objects); err != nil {
		problems = append(problems, err)
	}
	if err := checkCredentials(a, r.objects); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	cache.putApp(appKey, r.objects)
	return r, nil
}

// appValues merges the app's values files (read and checked by
// stack.Load), in order, then its inline values, the way repeated
// `helm template -f` flags merge.
func appValues(s *stack.Stack, a *stack.App) (map[string]any, error) {
	values := fileAndInlineValues(a)
	// The app running the plain prometheus chart loads the stack's rules.
	extra, err := prometheusChartValues(s, a)
	if err != nil || extra == nil {
		return values, err
	}
	merged := map[string]any{}
	mergeValues(merged, values)
	mergeValues(merged, extra)
	return merged, nil
}

func fileAndInlineValues(a *stack.App) map[string]any {
	if len(a.ValuesFiles) == 0 {
		return a.Values
	}
	merged := map[string]any{}
	for _, m := range a.FileValues() {
		mergeValues(merged, m)
	}
	mergeValues(merged, a.Values)
	return merged
}

// mergeValues merges src into dst: maps recursively, anything else
// replaced, as Helm merges values files.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
			cp := map[string]any{}
			mergeValues(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

func kustomizeOptions(a *stack.App) kustomize.Options {
	o := kustomize.Options{Labels: a.Labels, Annotations: a.Annotations, PodTemplates: a.PodTemplates}
	for _, p := range a.Patches {
		y, _ := yaml.Marshal(p.Patch) // decoded from JSON, so it always encodes
		kp := kustomize.Patch{Patch: string(y)}
		if t := p.Target; t != nil {
			kp.Target = &kustomize.Target{
				Group: t.Group, Version: t.Version, Kind: t.Kind, Name: t.Name,
				Namespace: t.Namespace, LabelSelector: t.LabelSelector, AnnotationSelector: t.AnnotationSelector,
			}
		}
		o.Patches = append(o.Patches, kp)
	}
	for _, im := range a.Images {
		o.Images = append(o.Images, kustomize.Image{Name: im.Name, NewName: im.NewName, NewTag: im.NewTag, Digest: im.Digest})
	}
	return o
}

// sameRender compares two renders of the same input and names every
// object and field that changed between them.
func sameRender(a *stack.App, first, second []helm.Document) *stack.Error {
	if len(first) != len(second) {
		return appError(a, "chart", "chart output is not deterministic: %d documents, then %d, from the same input", len(first), len(second))
	}
	var diffs []string
	for i := range first {
		if bytes.Equal(first[i].YAML, second[i].YAML) {
			continue
		}
		o1, err1 := parseObject(first[i].YAML, first[i].Source)
		o2, err2 := parseObject(second[i].YAML, second[i].Source)
		if err1 != nil || err2 != nil || o1 == nil || o2 == nil {
			diffs = append(diffs, fmt.Sprintf("%s changed", first[i].Source))
			continue
		}
		path, _ := firstDiff(o1.Body, o2.Body, "")
		diffs = append(diffs, fmt.Sprintf("%s field %s (from %s)", o1.ID(), path, o1.Source))
	}
	if len(diffs) == 0 {
		return nil
	}
	return appError(a, "values",
		"chart output is not deterministic: it changed between two renders of the same input:\n        %s\n    the chart generates these (randAlphaNum, now, genCA...) when a value is unset: set them in the app's values, or point the chart at an existing Secret",
		strings.Join(diffs, "\n        "))
}

// checkSecrets refuses Secrets with data: a bundle is readable by anyone
// who can pull it.
func checkSecrets(a *stack.App, ch *helm.Chart, objs []*Object) *stack.Error {
	if a.Secrets.AllowPlaintext {
		return nil
	}
	var found []string
	for _, o := range objs {
		if o.Kind != "Secret" || o.Group() != "" {
			continue
		}
		var keys []string
		for _, field := range []string{"data", "stringData"} {
			m, _ := o.Body[field].(map[string]any)
			for k := range m {
				keys = append(keys, field+"."+k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		sort.Strings(keys)
		found = append(found, fmt.Sprintf("%s (%s, from %s)", o.ID(), strings.Join(keys, ", "), o.Source))
	}
	if len(found) == 0 {
		return nil
	}
	hint := "point the chart at an existing Secret"
	if keys := existingSecretValues(helm.DefaultValues(ch)); len(keys) > 0 {
		hint += " (this chart's values for that: " + strings.Join(keys, ", ") + ")"
	}
	return appError(a, "secrets",
		"chart %s renders Secrets with data in plain text into the bundle, which anyone who can pull it can read:\n        %s\n    %s, or allow it for this app with `secrets: allowPlaintext: true`",
		ch.Name, strings.Join(found, "\n        "), hint)
}

// existingSecretValues finds the chart values that name an existing Secret
// (existingSecret, existingSecretName...), the usual way out of a
// generated one.
func existingSecretValues(values map[string]any) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, child := range m {
			p := joinPath(prefix, k)
			if strings.Contains(strings.ToLower(k), "existingsecret") {
				out = append(out, p)
				continue
			}
			walk(p, child)
		}
	}
	walk("", values)
	sort.Strings(out)
	if len(out) > 5 {
		out = append(out[:5], "...")
	}
	return out
}

// namespaces lists the namespaces other than the app's own that its
// objects name explicitly (kube-prometheus-stack writes to kube-system):
// the AppProject must allow them.
func (r *renderedApp) namespaces() []string {
	set := map[string]bool{}
	for _, o := range r.objects {
		if o.Namespace != "" && o.Namespace != r.app.Namespace && !clusterScoped[o.Kind] {
			set[o.Namespace] = true
		}
	}
	return sortedKeys(set)
}
