// Package compiler turns a stack into a bundle: it loads and validates the
// CUE, renders every app, generates the delivery objects and packs the
// result as a deterministic OCI artifact.
package compiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/yaml11"
)

// Options tune a compilation. The zero value is valid.
type Options struct {
	// GalleyVersion is recorded in the bundle index.
	GalleyVersion string
	// Getenv reads SOURCE_DATE_EPOCH; nil means os.Getenv.
	Getenv func(string) string
	// Jobs bounds how many apps render at once; 0 means GOMAXPROCS.
	Jobs int
	// CacheDir holds rendered charts (render/), each app's finished
	// objects (app/) and compressed layers (layer/) between builds ("" for
	// no cache; see DefaultCacheDir). A hit skips the work and gives the
	// same bundle.
	CacheDir string
	// Environment selects one of the stack's environments ("" for none).
	Environment string
	// Root confines the files the stack names; the zero value is the Git
	// repository holding the stack (see stack.Root). Compile records a
	// widened root in bundle.json.
	Root stack.Root
	// Progress, when set, is told as each app finishes.
	Progress func(Event)
	// Charts says how remote charts (oci, repository) are read through
	// galley.lock: cache, credentials, offline, updating the lock.
	Charts charts.Options
	// ResolveImages, when set, is given every image the bundle runs
	// (sorted) and returns what bundle.json records instead of each one,
	// e.g. repo:tag@sha256:... from its registry; an image missing from
	// the map stays as it is. Only the index changes: the manifests keep
	// the references as rendered, and import pins them. The CLI supplies
	// it, since the compiler does not talk to image registries.
	ResolveImages func(ctx context.Context, images []string) (map[string]string, error)
	// ArtifactType replaces the bundle manifest's artifactType
	// (bundles.ArtifactType), for a registry whose allow-list refuses it.
	ArtifactType string
}

// Event reports progress on one app.
type Event struct {
	App string
	// Cached says the app's chart render came from the render cache.
	Cached   bool
	Objects  int
	Duration time.Duration
	Err      error
}

// Result is a compiled stack.
type Result struct {
	Stack  *stack.Stack
	Index  *bundles.Index
	Tree   *bundles.Tree
	Bundle *bundles.Bundle
}

// Compile builds the bundle for the stack in dir. Errors in the stack come
// back as stack.Errors, every one of them, with positions in the user's CUE.
func Compile(ctx context.Context, dir string, o Options) (*Result, error) {
	s, err := stack.Load(ctx, dir, stack.WithEnvironment(o.Environment), stack.WithRoot(o.Root))
	if err != nil {
		return nil, err
	}
	return CompileStack(ctx, s, o)
}

// CompileStack builds the bundle for an already loaded stack.
func CompileStack(ctx context.Context, s *stack.Stack, o Options) (*Result, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	created, err := bundles.CreatedTime(getenv)
	if err != nil {
		return nil, err
	}
	remote, err := charts.Prepare(ctx, s, o.Charts)
	if err != nil {
		return nil, err
	}
	cache := newRenderCache(o.CacheDir, o.GalleyVersion)
	apps, err := renderApps(ctx, s, o, remote, cache, created)
	if err != nil {
		return nil, err
	}
	if err := checkCollisions(apps); err != nil {
		return nil, err
	}
	jobs, err := renderJobs(s, apps)
	if err != nil {
		return nil, err
	}

	tree := bundles.NewTree()
	index := &bundles.Index{
		SchemaVersion: bundles.IndexSchemaVersion,
		Galley:        o.GalleyVersion,
		Stack: bundles.IndexStack{
			Name: s.Name, Version: s.Version, Kubernetes: s.Kubernetes.Version, Description: s.Description,
			Environment: s.Environment,
		},
		Apps:   []bundles.IndexApp{},
		Images: []string{},
	}
	waves := stack.Waves(s)
	allImages := map[string]bool{}
	for _, r := range apps {
		entry, err := addApp(tree, r, waves[r.app.Name])
		if err != nil {
			return nil, err
		}
		for _, im := range entry.Images {
			allImages[im] = true
		}
		index.Apps = append(index.Apps, entry)
	}
	if err := addJobs(tree, index, jobs, waves, allImages); err != nil {
		return nil, err
	}
	index.Images = manifest.SortedKeys(allImages)
	index.Root = indexRoot(s)
	if o.ResolveImages != nil && len(index.Images) > 0 {
		pinned, err := o.ResolveImages(ctx, index.Images)
		if err != nil {
			return nil, err
		}
		pinImages(index, pinned)
	}
	if err := addTerraform(tree, index, s); err != nil {
		return nil, err
	}

	monitoring, err := addMonitoring(tree, s, apps, cache)
	if err != nil {
		return nil, err
	}
	apis := newAPIProvider(s, apps)
	if err := checkAPIs(s, apis, apps, monitoring, waves); err != nil {
		return nil, err
	}
	if err := addDelivery(tree, s, apps, waves, apis); err != nil {
		return nil, err
	}
	ib, err := index.Marshal()
	if err != nil {
		return nil, err
	}
	if err := tree.Add(bundles.IndexPath, ib); err != nil {
		return nil, err
	}

	po := bundles.PackOptions{ArtifactType: o.ArtifactType}
	if cache != nil {
		po.LayerCache = cache
	}
	b, err := bundles.PackWith(tree, bundles.Metadata{
		Name:        s.Name,
		Version:     s.Version,
		Description: s.Description,
		Source:      s.Source,
		Revision:    s.Revision,
		Created:     created,
		Annotations: environmentAnnotation(s),
	}, po)
	if err != nil {
		return nil, fmt.Errorf("packing bundle: %w", err)
	}
	return &Result{Stack: s, Index: index, Tree: tree, Bundle: b}, nil
}

// pinImages replaces the images of every list of the index as pinned
// says, keeping each list sorted and unique.
func pinImages(x *bundles.Index, pinned map[string]string) {
	pin := func(list []string) []string {
		if list == nil {
			return nil
		}
		set := make(map[string]bool, len(list))
		for _, im := range list {
			if p, ok := pinned[im]; ok {
				im = p
			}
			set[im] = true
		}
		return manifest.SortedKeys(set)
	}
	x.Images = pin(x.Images)
	for i := range x.Apps {
		x.Apps[i].Images = pin(x.Apps[i].Images)
	}
	for i := range x.Jobs {
		x.Jobs[i].Images = pin(x.Jobs[i].Images)
	}
}

func environmentAnnotation(s *stack.Stack) map[string]string {
	if s.Environment == "" {
		return nil
	}
	return map[string]string{bundles.AnnotationEnvironment: s.Environment}
}

// renderApps renders every app, at most Jobs at a time, and reports the
// errors of all of them rather than stopping at the first.
func renderApps(ctx context.Context, s *stack.Stack, o Options, remote chartSet, cache *renderCache, created time.Time) ([]*renderedApp, error) {
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	renderer := newAppRenderer(cache)
	out := make([]*renderedApp, len(s.Apps))
	errs := make([]error, len(s.Apps))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, a := range s.Apps {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			j, err := prepareApp(s, a, remote, created)
			var r *renderedApp
			if err == nil {
				r, err = renderer.renderApp(gctx, j)
			}
			out[i], errs[i] = r, err
			if o.Progress != nil {
				ev := Event{App: a.Name, Duration: time.Since(start), Err: err}
				if r != nil {
					ev.Objects, ev.Cached = len(r.objects), r.cached
				}
				mu.Lock()
				o.Progress(ev)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var all stack.Errors
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ok bool
		if all, ok = appendStackErrors(all, err); !ok {
			return nil, err
		}
	}
	if len(all) > 0 {
		return nil, all
	}
	return out, nil
}

// appendStackErrors appends the problems err holds to errs; ok is false
// when err is not a stack error, for the caller to return as it is.
func appendStackErrors(errs stack.Errors, err error) (_ stack.Errors, ok bool) {
	var es stack.Errors
	var e *stack.Error
	switch {
	case errors.As(err, &es):
		return append(errs, es...), true
	case errors.As(err, &e):
		return append(errs, e), true
	}
	return errs, false
}

// checkCollisions refuses two apps writing the same object: whichever
// syncs last would silently win.
func checkCollisions(apps []*renderedApp) error {
	owner := map[string]*renderedApp{}
	var errs stack.Errors
	for _, r := range apps {
		for _, o := range r.objects {
			k := o.Key(r.app.Namespace)
			prev, ok := owner[k]
			if !ok {
				owner[k] = r
				continue
			}
			if prev == r {
				e := appError(r.app, "chart", "chart renders %s twice", o.ID())
				errs = append(errs, e)
				continue
			}
			ns := o.Namespace
			if ns == "" && !manifest.ClusterScoped[o.Kind] {
				ns = r.app.Namespace
			}
			where := "cluster-wide"
			if ns != "" {
				where = "in namespace " + ns
			}
			e := appError(r.app, "", "apps %s and %s both write %s %s %s: rename one (releaseName) or patch it",
				prev.app.Name, r.app.Name, o.Kind, o.Name, where)
			e.Related = append(e.Related, prev.app.Pos(""))
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// addApp writes an app's objects to apps/<name>/, one object per file.
func addApp(tree *bundles.Tree, r *renderedApp, wave int) (bundles.IndexApp, error) {
	dir := bundles.AppDir(r.app.Name)
	images, err := addObjects(tree, dir, "app "+r.app.Name, r.objects)
	if err != nil {
		return bundles.IndexApp{}, err
	}
	deps := append([]string{}, r.app.DependsOn...)
	sort.Strings(deps)
	return bundles.IndexApp{
		Name:      r.app.Name,
		Namespace: r.app.Namespace,
		Path:      dir,
		Chart: bundles.IndexChart{
			Name: r.chart.Name, Version: r.chart.Version, AppVersion: r.chart.AppVersion, Digest: r.chart.Digest,
		},
		SyncWave:  wave,
		DependsOn: deps,
		Objects:   len(r.objects),
		Images:    images,
	}, nil
}

// addObjects writes objects to dir, one per file, and returns the images
// they run, sorted. what names their app or job in errors.
func addObjects(tree *bundles.Tree, dir, what string, objs []*Object) ([]string, error) {
	names := fileNames(objs)
	images := map[string]bool{}
	for i, o := range objs {
		y, err := o.YAML()
		if err != nil {
			return nil, err
		}
		if err := tree.Add(dir+"/"+names[i], y); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for _, im := range o.Images() {
			images[im] = true
		}
	}
	return manifest.SortedKeys(images), nil
}

// addDelivery writes the GitOps objects the stack asks for: argocd/
// (argocd.go) and flux/ (flux.go).
func addDelivery(tree *bundles.Tree, s *stack.Stack, apps []*renderedApp, waves map[string]int, apis *apiProvider) error {
	if err := addArgoCD(tree, s, apps, waves, apis); err != nil {
		return err
	}
	return addFlux(tree, s, apps)
}

// addGenerated adds a file galley generated (delivery, monitoring) to the
// tree, its YAML quoted where YAML 1.1 readers would read it otherwise.
func addGenerated(tree *bundles.Tree, path string, data []byte) error {
	if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
		q, err := yaml11.Quote(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		data = q
	}
	return tree.Add(path, data)
}

func appError(a *stack.App, field, format string, args ...any) *stack.Error {
	path := "stack.apps." + a.Name
	if field != "" {
		path += "." + field
	}
	return &stack.Error{Pos: a.Pos(field), Path: path, Msg: strings.TrimSpace(fmt.Sprintf(format, args...))}
}

// indexRoot records a root the stack was built with other than the
// default, for reviewers of the bundle; nil for the default.
func indexRoot(s *stack.Stack) *bundles.IndexRoot {
	r := s.Root()
	switch {
	case r.AllowOutside:
		return &bundles.IndexRoot{AllowOutside: true}
	case r.Dir != "":
		return &bundles.IndexRoot{Dir: s.RootRel()}
	}
	return nil
}
