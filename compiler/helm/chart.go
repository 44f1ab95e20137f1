// Package helm renders Helm charts in-process with the Helm SDK, giving the
// documents `helm template` prints for the same chart, release, namespace,
// values and Kubernetes version.
package helm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/ignore"
)

var (
	// ErrNotChart is returned by Load for a path that is neither a chart
	// directory nor a gzip-compressed chart archive.
	ErrNotChart = errors.New("not a helm chart")
	// ErrMissingDependency matches a *DependencyError.
	ErrMissingDependency = errors.New("missing chart dependency")
	// ErrUnsafeArchive is returned by Load for a chart archive with entries
	// that could escape the chart (absolute or parent paths, links, devices)
	// or that decompresses beyond the size limits.
	ErrUnsafeArchive = errors.New("unsafe chart archive")
)

// Chart is a loaded chart, ready to render any number of times, from any
// number of goroutines at once. Render never modifies it.
type Chart struct {
	Name       string
	Version    string
	AppVersion string
	// Digest is "sha256:<hex>": for an archive, the digest of the file; for
	// a directory, the digest of the sorted relative paths and contents of
	// the files helm loads from it (after .helmignore), see dirDigest.
	Digest string
	// Path is the path Load was given.
	Path string
	// Warnings are what helm logged while loading (e.g. symlinks it
	// followed, deprecated requirements.yaml).
	Warnings []string

	chart *chart.Chart

	traceOnce sync.Once
	traced    *chart.Chart // chart with its traced calls renamed (sites.go)
	sites     []*site
}

// tracedTree returns the chart as the tracer renders it, made on first use.
func (c *Chart) tracedTree() (*chart.Chart, []*site) {
	c.traceOnce.Do(func() { c.traced, c.sites = traceTree(c.chart) })
	return c.traced, c.sites
}

// Limits on what Load reads from a chart archive, nested subchart archives
// included. maxFile matches helm's own loader.MaxDecompressedFileSize and
// maxTotal its MaxDecompressedChartSize, so every archive helm accepts fits.
type archiveLimits struct {
	maxTotal   int64 // decompressed bytes in all
	maxFile    int64 // decompressed bytes of one file
	maxEntries int
	maxDepth   int // charts/*.tgz inside charts/*.tgz ...
}

var defaultLimits = archiveLimits{
	maxTotal:   100 << 20,
	maxFile:    5 << 20,
	maxEntries: 10000,
	maxDepth:   8,
}

// Load loads the chart directory or chart archive (.tgz) at path, with every
// dependency its Chart.yaml declares vendored in its charts/ directory.
func Load(path string) (*Chart, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("loading chart %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("loading chart: %w", err)
	}

	var (
		files  []*archive.BufferedFile
		digest string
		warns  []string
	)
	if fi.IsDir() {
		files, warns, err = readDir(path)
		if err == nil {
			digest = dirDigest(files)
		}
	} else {
		files, digest, err = readArchiveFile(path, defaultLimits)
	}
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", path, err)
	}

	var ch *chart.Chart
	warns = append(warns, captureLog(func() {
		// LoadFiles renames the subchart files it is given: pass copies.
		in := make([]*archive.BufferedFile, len(files))
		for i, f := range files {
			in[i] = &archive.BufferedFile{Name: f.Name, Data: bytes.TrimPrefix(f.Data, utf8BOM)}
		}
		ch, err = loader.LoadFiles(in)
	})...)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", path, err)
	}
	if err := checkDependencies(ch); err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", path, err)
	}
	sortDependencies(ch)

	return &Chart{
		Name:       ch.Metadata.Name,
		Version:    ch.Metadata.Version,
		AppVersion: ch.Metadata.AppVersion,
		Digest:     digest,
		Path:       path,
		Warnings:   warns,
		chart:      ch,
	}, nil
}

// DefaultValues returns a copy of the chart's own values.yaml (not those of
// its subcharts), decoded the way helm decodes it: numbers are float64.
func DefaultValues(c *Chart) map[string]any {
	v := copyValues(c.chart.Values)
	if v == nil {
		v = map[string]any{}
	}
	return v
}

// ParseValues decodes a values file the way `helm template -f` does, so a
// render from it matches the CLI's (numbers become float64, as in JSON).
func ParseValues(data []byte) (map[string]any, error) {
	v, err := common.ReadValues(data)
	if err != nil {
		return nil, fmt.Errorf("parsing values: %w", err)
	}
	return v.AsMap(), nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readDir reads the files helm's loader.LoadDir would: sorted, .helmignore
// and its defaults applied, symlinks followed (helm includes what they point
// to, and says so). Data is as on disk: Load trims a byte order mark the way
// helm does after the digest is taken.
func readDir(root string) ([]*archive.BufferedFile, []string, error) {
	if _, err := os.Stat(filepath.Join(root, "Chart.yaml")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no Chart.yaml in %s: %w", root, ErrNotChart)
		}
		return nil, nil, err
	}
	rules := ignore.Empty()
	var warns []string
	if ifile := filepath.Join(root, ignore.HelmIgnore); fileExists(ifile) {
		var err error
		warns = captureLog(func() { rules, err = ignore.ParseFile(ifile) })
		if err != nil {
			return nil, warns, fmt.Errorf("reading %s: %w", ifile, err)
		}
	}
	rules.AddDefaults()

	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, warns, err
	}
	w := dirWalker{rules: rules, active: map[string]bool{}, root: realRoot}
	if err := w.walkDir(root, ""); err != nil {
		return nil, warns, err
	}
	warns = append(warns, w.warns...)
	if err := checkNestedArchives(w.files, defaultLimits); err != nil {
		return nil, warns, err
	}
	return w.files, warns, nil
}

type dirWalker struct {
	// root is the chart directory with its links resolved: links may not
	// lead out of it.
	root   string
	rules  *ignore.Rules
	active map[string]bool // resolved directories being walked, to stop symlink loops
	files  []*archive.BufferedFile
	warns  []string
}

func (w *dirWalker) walkDir(dir, rel string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if w.active[real] {
		return fmt.Errorf("symbolic link loop at %s", dir)
	}
	w.active[real] = true
	defer delete(w.active, real)

	entries, err := os.ReadDir(dir) // sorted by name, as helm walks
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		n := e.Name()
		if rel != "" {
			n = rel + "/" + n
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("evaluating symbolic link %s: %w", p, err)
			}
			// Helm follows links anywhere; galley publishes what it reads
			// to anyone who can pull the bundle, so a link may not bring in
			// files from outside the chart (a key, a kubeconfig).
			if r, err := filepath.Rel(w.root, resolved); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return fmt.Errorf("symbolic link %s points outside the chart (to %s): galley does not bundle files from outside a chart; copy the file into the chart or package it", n, resolved)
			}
			w.warns = append(w.warns, fmt.Sprintf("found symbolic link in path: %s resolves to %s. Contents of linked file included and used", p, resolved))
			if fi, err = os.Lstat(resolved); err != nil {
				return err
			}
		}
		if w.rules.Ignore(n, fi) {
			continue
		}
		if fi.IsDir() {
			if err := w.walkDir(p, n); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s", p)
		}
		if fi.Size() > defaultLimits.maxFile {
			return fmt.Errorf("chart file %s is %d bytes, over the %d byte limit for one file", p, fi.Size(), defaultLimits.maxFile)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w.files = append(w.files, &archive.BufferedFile{Name: n, Data: data})
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// dirDigest is sha256 over the files sorted by relative path, each written
// as path, NUL, decimal length, NUL, contents: unambiguous whatever the names.
func dirDigest(files []*archive.BufferedFile) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b *archive.BufferedFile) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range sorted {
		io.WriteString(h, f.Name)
		h.Write([]byte{0})
		io.WriteString(h, strconv.Itoa(len(f.Data)))
		h.Write([]byte{0})
		h.Write(f.Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// DependencyError reports the dependencies a chart declares in Chart.yaml
// that its charts/ directory does not hold. Helm itself would stop on some
// of these and silently render without others (a wrong version, or a
// dependency of a subchart).
type DependencyError struct {
	// Chart is the chart's path in the loaded tree, e.g.
	// "airflow" or "kube-prometheus-stack/charts/grafana".
	Chart string
	// Missing describes each unmet dependency.
	Missing []string
}

func (e *DependencyError) Error() string {
	return fmt.Sprintf("chart %s: %s not found in %s/charts/; run `helm dependency build` on the chart or vendor the dependency into charts/",
		e.Chart, strings.Join(e.Missing, ", "), e.Chart)
}

// Is makes errors.Is(err, ErrMissingDependency) true.
func (e *DependencyError) Is(target error) bool { return target == ErrMissingDependency }

// checkDependencies checks every chart in the tree the way helm's
// processDependencyEnabled matches them: by name and version range.
func checkDependencies(ch *chart.Chart) error {
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		var found []string
		ok := false
		for _, sub := range ch.Dependencies() {
			if sub.Name() != d.Name {
				continue
			}
			if chartutil.IsCompatibleRange(d.Version, sub.Metadata.Version) {
				ok = true
				break
			}
			found = append(found, sub.Metadata.Version)
		}
		if ok {
			continue
		}
		m := fmt.Sprintf("dependency %s %s", d.Name, d.Version)
		if d.Repository != "" {
			m += " (from " + d.Repository + ")"
		}
		if len(found) > 0 {
			m += " (charts/ has version " + strings.Join(found, ", ") + ")"
		}
		missing = append(missing, m)
	}
	if len(missing) > 0 {
		return &DependencyError{Chart: ch.ChartFullPath(), Missing: missing}
	}
	for _, sub := range ch.Dependencies() {
		if err := checkDependencies(sub); err != nil {
			return err
		}
	}
	return nil
}

// sortDependencies orders subcharts by name: helm's loader adds them in Go
// map order, which leaks into the order of CRDs from several subcharts.
func sortDependencies(ch *chart.Chart) {
	deps := slices.Clone(ch.Dependencies())
	slices.SortStableFunc(deps, func(a, b *chart.Chart) int {
		if c := strings.Compare(a.Name(), b.Name()); c != 0 {
			return c
		}
		return strings.Compare(a.Metadata.Version, b.Metadata.Version)
	})
	ch.SetDependencies(deps...)
	for _, d := range deps {
		sortDependencies(d)
	}
}

// copyChart copies the parts of a chart tree that rendering modifies:
// chartutil.ProcessDependencies rewrites Metadata.Dependencies (Enabled,
// aliases, import-values), replaces Values and prunes the subchart list.
// Templates and files are only read and stay shared.
func copyChart(c *chart.Chart) *chart.Chart {
	out := *c
	md := *c.Metadata
	if c.Metadata.Dependencies != nil {
		md.Dependencies = make([]*chart.Dependency, len(c.Metadata.Dependencies))
		for i, d := range c.Metadata.Dependencies {
			if d == nil {
				continue
			}
			dc := *d
			dc.Tags = slices.Clone(d.Tags)
			dc.ImportValues = slices.Clone(d.ImportValues)
			md.Dependencies[i] = &dc
		}
	}
	out.Metadata = &md
	out.Values = copyValues(c.Values)
	deps := make([]*chart.Chart, len(c.Dependencies()))
	for i, d := range c.Dependencies() {
		deps[i] = copyChart(d)
	}
	out.SetDependencies(deps...) // also points each copy's parent at out
	return &out
}

// copyValues deep-copies decoded YAML: maps, slices and scalars.
func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return nil
	}
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = copyValue(x)
	}
	return out
}

func copyValue(x any) any {
	switch t := x.(type) {
	case map[string]any:
		return copyValues(t)
	case common.Values:
		return common.Values(copyValues(t))
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	default:
		return x
	}
}

// ValidateValues checks values, as given to Render, against the
// values.schema.json of the chart and of each subchart, as helm does
// before rendering; the error is helm's, which lists each violation as
// "- at '<JSON pointer>': <message>" below the chart it belongs to.
func ValidateValues(c *Chart, values map[string]any) error {
	ch := copyChart(c.chart)
	vals, err := commonutil.CoalesceValues(ch, copyValues(values))
	if err != nil {
		return err
	}
	return commonutil.ValidateAgainstSchema(ch, vals)
}
