package helm

import (
	"context"
	"errors"
	"fmt"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"text/template"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"
)

// Request says how to render a chart, as the flags of `helm template` would.
type Request struct {
	ReleaseName string // required
	Namespace   string // required: helm template would default to "default"
	// Values are the user-supplied values, merged over the chart's own as
	// -f and --set would be, decoded from YAML or JSON (map[string]any,
	// []any, string, float64, bool, nil): ParseValues decodes a values file
	// like -f does. Render does not modify them.
	Values map[string]any
	// KubeVersion is .Capabilities.KubeVersion, e.g. "1.33.0" (required:
	// the SDK's default, v1.20.0, is refused by many real charts).
	KubeVersion string
	// APIVersions are added to helm's default set
	// (chartutil.DefaultVersionSet) for .Capabilities.APIVersions.Has,
	// like --api-versions, e.g. "monitoring.coreos.com/v1/ServiceMonitor".
	APIVersions []string
	// IncludeCRDs puts the files of the charts' crds/ directories first,
	// like --include-crds.
	IncludeCRDs bool
	// KeepTestHooks keeps test hooks (helm.sh/hook: test or test-success),
	// which Render drops by default as `helm template --skip-tests` does.
	KeepTestHooks bool
	// Now pins the chart's clock (now, and the date functions given no
	// time) to this time. Nil refuses them: see NondeterminismError.
	Now *time.Time
	// Warn, if set, is called with each warning helm gave while rendering
	// (the lines `helm template` prints on stderr), after rendering ends.
	Warn func(msg string)
}

// Document is one rendered YAML document.
type Document struct {
	// Source is the template it came from, e.g.
	// "metabase/templates/deployment.yaml" (the "# Source:" line).
	Source string
	// Hook is the helm.sh/hook annotation of a hook, "" for the others.
	Hook string
	// YAML is the document as helm printed it, without the "---" and
	// "# Source:" lines, ending in a newline.
	YAML []byte
}

// plainNames puts back the names of the functions the tracer renamed in
// helm's error messages.
func plainNames(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, siteSuffix) {
		return err
	}
	return errors.New(siteName.ReplaceAllString(msg, "$1"))
}

var siteName = regexp.MustCompile(`([A-Za-z_]+)` + siteSuffix + `[0-9]+`)

// Render renders c as `helm template` would, returning the documents in the
// order the CLI prints them: the CRDs when asked for, the release manifest
// (sorted by kind in install order), then the hooks. Documents holding only
// comments or blank lines are dropped. Render may be called from several
// goroutines at once, on the same chart too.
//
// The non-deterministic template functions (randAlphaNum, genCA, now...)
// are traced (trace.go): when what they return reaches the output, or
// cannot be followed, Render returns the documents, with sentinels in
// place of those values, and a *NondeterminismError naming each place.
//
// Helm's renderer cannot be interrupted: when ctx ends first, Render returns
// ctx's error at once and the abandoned render finishes in the background.
func Render(ctx context.Context, c *Chart, req Request) ([]Document, error) {
	wrap := func(err error) error { return fmt.Errorf("rendering chart %s: %w", c.Name, err) }
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	if req.Namespace == "" {
		return nil, wrap(errors.New("no namespace given"))
	}
	if req.KubeVersion == "" {
		return nil, wrap(errors.New("no Kubernetes version given"))
	}
	kv, err := common.ParseKubeVersion(req.KubeVersion)
	if err != nil {
		return nil, wrap(fmt.Errorf("invalid Kubernetes version %q: %w", req.KubeVersion, err))
	}
	switch t := c.chart.Metadata.Type; t {
	case "", "application":
	default:
		return nil, wrap(fmt.Errorf("%s charts cannot be rendered", t))
	}

	type result struct {
		docs  []Document
		warns []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			// Helm recovers template panics itself; anything else must
			// not take the whole compiler down.
			if p := recover(); p != nil {
				r.err = fmt.Errorf("helm panicked: %v\n%s", p, debug.Stack())
			}
			done <- r
		}()
		tree, sites := c.tracedTree()
		tr := &tracer{sites: sites, now: req.Now}
		r.warns = captureLog(func() { r.docs, r.err = render(tree, req, kv, tr.funcs()) })
		if r.err == nil {
			if nd := tr.check(c.Name, r.docs); nd != nil {
				r.err = nd
			}
		} else {
			r.err = plainNames(r.err)
		}
	}()

	select {
	case <-ctx.Done():
		return nil, wrap(ctx.Err())
	case r := <-done:
		if req.Warn != nil {
			if c.chart.Metadata.Deprecated {
				req.Warn("chart " + c.Name + " is deprecated")
			}
			for _, w := range r.warns {
				req.Warn(w)
			}
		}
		var nd *NondeterminismError
		if errors.As(r.err, &nd) {
			// The documents come too: with sentinels where the values
			// would change, still fit for the other checks.
			return r.docs, nd
		}
		if r.err != nil {
			return nil, wrap(r.err)
		}
		return r.docs, nil
	}
}

// render does what `helm template` does between loading the chart and
// printing it (helm's renderResources in client-only mode), calling the
// engine itself: Helm 4's install action would also build a release record,
// set up an in-memory release store and a printing kube client, none of
// which a template render needs. funcs are the custom template functions
// (tracing.go) the engine puts over its own.
func render(tree *chart.Chart, req Request, kv *common.KubeVersion, funcs template.FuncMap) ([]Document, error) {
	ch := copyChart(tree)
	vals := copyValues(req.Values)
	if vals == nil {
		vals = map[string]any{}
	}

	if err := chartutil.ValidateReleaseName(req.ReleaseName); err != nil {
		return nil, fmt.Errorf("release name %q: %w", req.ReleaseName, err)
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return nil, fmt.Errorf("chart dependencies processing failed: %w", err)
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	// A fresh slice: the default set is shared by every render.
	caps.APIVersions = append(slices.Clip(slices.Clone(caps.APIVersions)), req.APIVersions...)
	if v := ch.Metadata.KubeVersion; v != "" && !chartutil.IsCompatibleRange(v, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", v, caps.KubeVersion.Version)
	}
	opts := common.ReleaseOptions{Name: req.ReleaseName, Namespace: req.Namespace, Revision: 1, IsInstall: true}
	top, err := util.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, false)
	if err != nil {
		return nil, err
	}

	e := engine.Engine{CustomTemplateFuncs: funcs}
	files, err := e.RenderWithContext(context.Background(), ch, top)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}

	// Printed and split again exactly as `helm template` output is read,
	// so that documents come out as they did through the install action.
	var b strings.Builder
	if req.IncludeCRDs {
		for _, crd := range ch.CRDObjects() {
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Filename, crd.File.Data)
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	docs := splitManifest(b.String())
	for _, h := range hooks {
		if !req.KeepTestHooks && slices.Contains(h.Events, release.HookTest) {
			continue
		}
		y := h.Manifest + "\n"
		if isBlankYAML(y) {
			continue
		}
		docs = append(docs, Document{Source: h.Path, Hook: hookAnnotation(h), YAML: []byte(y)})
	}
	return docs, nil
}

// hookAnnotation returns the helm.sh/hook value as written; helm keeps only
// the parsed events (with "test-success" already turned into "test").
func hookAnnotation(h *release.Hook) string {
	var head releaseutil.SimpleHead
	if err := yaml.Unmarshal([]byte(h.Manifest), &head); err == nil && head.Metadata != nil {
		if v, ok := head.Metadata.Annotations[release.HookAnnotation]; ok {
			return v
		}
	}
	ev := make([]string, len(h.Events))
	for i, e := range h.Events {
		ev[i] = e.String()
	}
	return strings.Join(ev, ",")
}

// splitManifest splits a release manifest, a stream of
// "---\n# Source: <path>\n<document>\n", into documents. A file from crds/
// may hold several documents: those after its first carry no "# Source:"
// line and keep the path of the one before. A line starting with "---" is a
// document marker wherever it appears (YAML forbids it inside scalars).
func splitManifest(m string) []Document {
	// A document is one contiguous run of m (after its marker and source
	// lines), so it is sliced out rather than copied line by line.
	var (
		docs         []Document
		source       string
		start, pos   int
		expectSource bool
	)
	flush := func(end int) {
		if y := m[start:end]; !isBlankYAML(y) {
			if !strings.HasSuffix(y, "\n") {
				y += "\n"
			}
			docs = append(docs, Document{Source: source, YAML: []byte(y)})
		}
	}
	for pos < len(m) {
		line := m[pos:]
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		next := pos + len(line)

		if isDocMarker(line) {
			flush(pos)
			expectSource, start = true, next
			if rest := strings.TrimSpace(line[3:]); rest != "" && !strings.HasPrefix(rest, "#") {
				start = pos // "--- !tag" or "--- value": content starts on the marker line
				expectSource = false
			}
			pos = next
			continue
		}
		if expectSource {
			expectSource = false
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = strings.TrimSpace(s)
				start = next
			}
		}
		pos = next
	}
	flush(len(m))
	return docs
}

func isDocMarker(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	return len(line) == 3 || strings.ContainsRune(" \t\r\n", rune(line[3]))
}

// isBlankYAML reports whether a document holds nothing but comments and
// whitespace.
func isBlankYAML(y string) bool {
	for _, l := range strings.Split(y, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
