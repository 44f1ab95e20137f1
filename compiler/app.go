package compiler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/kustomize"
	"github.com/galley-dev/galley/compiler/manifest"
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

// appJob is an app ready to render: everything its objects depend on,
// read from the stack and its chart without rendering anything. A cache
// keys an app's objects by it.
type appJob struct {
	stack *stack.Stack
	app   *stack.App
	chart *helm.Chart
	req   helm.Request
	ko    kustomize.Options
	marks deliveryMarks
}

// prepareApp loads the app's chart and merges its values.
func prepareApp(s *stack.Stack, a *stack.App, remote chartSet, created time.Time) (*appJob, error) {
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
	if a.PinNow {
		req.Now = &created
	}
	return &appJob{stack: s, app: a, chart: ch, req: req, ko: kustomizeOptions(a), marks: marksFor(s, a)}, nil
}

// An appRenderer turns an app into its finished objects. The build is
// appBuilder; cachingApps (appcache.go) wraps it, as ko wraps its
// builders, so that caching stays out of rendering.
type appRenderer interface {
	renderApp(ctx context.Context, j *appJob) (*renderedApp, error)
}

// A chartRenderer renders a chart; cached says the documents came from
// a cache. helmRenderer renders; cachingCharts (cache.go) wraps it.
type chartRenderer interface {
	render(ctx context.Context, ch *helm.Chart, req helm.Request) (docs []helm.Document, cached bool, err error)
}

// newAppRenderer is the build with the caches dir holds (nil for none).
func newAppRenderer(cache *renderCache) appRenderer {
	if cache == nil {
		return appBuilder{charts: helmRenderer{}}
	}
	return cachingApps{inner: appBuilder{charts: cachingCharts{inner: helmRenderer{}, cache: cache}}, cache: cache}
}

// helmRenderer renders with Helm's engine, with every value that would
// change between runs (randAlphaNum, now, genCA...) traced into the
// output (helm/trace.go) so that it is caught instead of bundled.
type helmRenderer struct{}

func (helmRenderer) render(ctx context.Context, ch *helm.Chart, req helm.Request) ([]helm.Document, bool, error) {
	docs, err := helm.Render(ctx, ch, req)
	return docs, false, err
}

// appBuilder renders an app's chart once, applies the app's patches and
// checks its objects (determinism, Secrets, credentials).
type appBuilder struct {
	charts chartRenderer
}

var (
	_ appRenderer   = appBuilder{}
	_ chartRenderer = helmRenderer{}
)

func (b appBuilder) renderApp(ctx context.Context, j *appJob) (*renderedApp, error) {
	a, ch, req := j.app, j.chart, j.req
	// Non-determinism and plaintext Secrets are both reported: an
	// unpinned chart usually has both problems, and fixing one should not
	// reveal the other on the next run.
	var problems stack.Errors
	first, hit, err := b.charts.render(ctx, ch, req)
	var nd *helm.NondeterminismError
	switch {
	case errors.As(err, &nd):
		problems = append(problems, nondeterministic(a, nd, newProver(ctx, ch, req)))
	case err != nil:
		if es, ok := valuesSchemaErrors(a, ch.Name, err); ok {
			return nil, es
		}
		return nil, appError(a, "chart", "%v", err)
	}

	docs := make([][]byte, len(first))
	sources := make([]string, len(first))
	for i, d := range first {
		docs[i] = d.YAML
		sources[i] = d.Source
	}
	patched, err := kustomize.Apply(docs, j.ko)
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
	if err := markObjects(a, j.marks, r.objects); err != nil {
		problems = append(problems, err)
	}
	if err := checkSecrets(a, ch, r.objects, func() *prover { return newProver(ctx, ch, req) }); err != nil {
		problems = append(problems, err)
	}
	if err := checkCredentials(a, r.objects); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, problems
	}
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

// nondeterministic reports every field of the output that would change
// from one build to the next, with the call that makes it change and the
// way to pin it.
func nondeterministic(a *stack.App, nd *helm.NondeterminismError, p *prover) *stack.Error {
	var lines []string
	var keys []string
	refused, clock := false, false
	pins := p.pinNondeterminism(nd)
	for _, f := range nd.Found {
		pin, ok := pins[findingID(f)]
		if ok {
			f.ValuesKeys = nil
		}
		line := f.String()
		switch {
		case ok && pin.drops:
			line += fmt.Sprintf("; setting values key %s drops %s", pin.key, f.Object)
		case ok:
			line += fmt.Sprintf("; setting values key %s pins it", pin.key)
		}
		lines = append(lines, line)
		if ok && !slices.Contains(keys, pin.key) {
			keys = append(keys, pin.key)
		}
		refused = refused || f.Refused != ""
		clock = clock || f.Refused == "reads the clock"
	}
	var advice []string
	if len(keys) > 0 {
		sort.Strings(keys)
		advice = append(advice, "set "+strings.Join(keys, ", ")+" in the app's values (checked: the build then renders without these)")
	}
	var unpinned []string
	for _, f := range nd.Found {
		if _, ok := pins[findingID(f)]; !ok && f.Object != "" && !slices.Contains(unpinned, f.Object) {
			unpinned = append(unpinned, f.Object)
		}
	}
	if len(unpinned) > 0 {
		advice = append(advice, "for "+strings.Join(unpinned, ", ")+": point the chart at an existing Secret, or drop the object with a Kustomize patch "+
			"`patches: [{patch: {apiVersion: ..., kind: ..., metadata: name: ..., \"$patch\": \"delete\"}}]` and create it outside the bundle")
	}
	if clock {
		advice = append(advice, "for the clock, set `pinNow: true` on the app to render it as SOURCE_DATE_EPOCH")
	}
	msg := "chart output is not deterministic: these would change from one build to the next:\n        %s\n    %s"
	if refused {
		msg = "chart output is not deterministic: these would change from one build to the next, or galley cannot tell that they do not:\n        %s\n    %s"
	}
	return appError(a, "values", msg, strings.Join(lines, "\n        "), strings.Join(advice, "; "))
}

// checkSecrets refuses Secrets with data: a bundle is readable by anyone
// who can pull it. The way out it suggests is proved by rendering again.
func checkSecrets(a *stack.App, ch *helm.Chart, objs []*Object, prove func() *prover) *stack.Error {
	if a.Secrets.AllowPlaintext {
		return nil
	}
	var found []string
	var secrets []*Object
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
		secrets = append(secrets, o)
	}
	if len(found) == 0 {
		return nil
	}
	// Only what a render proved: a key that leaves the Secret in place
	// is not advice.
	fixes, tried := prove().secretKeys(secrets)
	var hints []string
	for _, o := range secrets {
		if keys := fixes["Secret/"+o.Name]; len(keys) > 0 {
			hints = append(hints, fmt.Sprintf("%s: set %s to the name of an existing Secret (checked: the chart then no longer renders it)", o.ID(), strings.Join(keys, " or ")))
			continue
		}
		none := "no value of this chart names an existing Secret for it"
		if t := tried["Secret/"+o.Name]; len(t) > 0 {
			none = "setting " + strings.Join(t, ", ") + " does not remove it"
		}
		hints = append(hints, fmt.Sprintf("%s: %s; drop it with %s and create a Secret of that name outside the bundle (External Secrets, Sealed Secrets, kubectl): the chart's workloads keep referring to it by name",
			o.ID(), none, deletePatch(o.Name)))
	}
	return appError(a, "secrets",
		"chart %s renders Secrets with data in plain text into the bundle, which anyone who can pull it can read:\n        %s\n    to fix:\n        %s\n    or allow it for this app with `secrets: allowPlaintext: true`",
		ch.Name, strings.Join(found, "\n        "), strings.Join(hints, "\n        "))
}

// namespaces lists the namespaces other than the app's own that its
// objects name explicitly (kube-prometheus-stack writes to kube-system):
// the AppProject must allow them.
func (r *renderedApp) namespaces() []string {
	set := map[string]bool{}
	for _, o := range r.objects {
		if o.Namespace != "" && o.Namespace != r.app.Namespace && !manifest.ClusterScoped[o.Kind] {
			set[o.Namespace] = true
		}
	}
	return manifest.SortedKeys(set)
}
