// Command compare is `make bench`: it measures, on this machine and in one
// go, `galley bundle build` and `galley bundle push` of the stack of the
// six real charts (testdata/stacks/real-charts, plus a grafana patch)
// against bench/pipeline.sh, which does what teams do today for the same
// bundle (helm template per chart, kustomize build for the patched app,
// tar+gzip, oras push). Both push to a CNCF Distribution registry it starts
// on 127.0.0.1 with temporary storage. Every scenario runs -runs times,
// interleaved so that a change in machine load hits all of them alike; it
// prints the median wall time, the peak RSS and the ratio to the script,
// then the scaling of galley over synthetic stacks of 10, 50 and 200 apps,
// then the targets, met or not.
//
// The pinned tools come from scripts/tool-path.sh (run `make tools` first);
// galley is built from this checkout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/galley-dev/galley/bench/stackgen"
	"github.com/galley-dev/galley/internal/largelayout"
)

type options struct {
	runs, scaleRuns int
	maxLoad         float64
	keep            bool
	out             string
	charts          string
	noDev           bool
	largeRuns       int
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "runs of each scenario")
	flag.IntVar(&o.scaleRuns, "scale-runs", 3, "runs of each synthetic stack size")
	flag.Float64Var(&o.maxLoad, "max-load", 0, "wait (up to 10 minutes) until the 1-minute load average is below this before measuring (0: do not wait)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (bundles, registry storage and log)")
	flag.StringVar(&o.out, "o", "", "also write the report to this file")
	flag.StringVar(&o.charts, "charts", "", "the real charts (default ../shared/charts beside the checkout)")
	flag.BoolVar(&o.noDev, "no-dev", false, "skip the row of an unversioned development build")
	flag.IntVar(&o.largeRuns, "large-runs", 1, "runs of the push and pull of a bundle with a 1 GiB layer (0: skip them; each writes about 3 GiB to disk)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench holds what every scenario needs.
type bench struct {
	root, work, charts string
	tools              map[string]string
	galley, galleyDev  string
	reg                *registry
	runs               int
}

func run(ctx context.Context, o options) (err error) {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	b := &bench{root: root, runs: o.runs, tools: map[string]string{}}
	b.charts = o.charts
	if b.charts == "" {
		b.charts = filepath.Join(filepath.Dir(root), "shared", "charts")
	}
	if _, err := os.Stat(filepath.Join(b.charts, "kube-prometheus-stack")); err != nil {
		return fmt.Errorf("the real charts are missing (%v): they live in ../shared/charts beside the checkout", err)
	}
	for _, t := range []string{"helm", "kustomize", "oras", "registry"} {
		out, err := exec.Command(filepath.Join(root, "scripts", "tool-path.sh"), t).Output()
		if err != nil {
			return fmt.Errorf("%s is not installed for the current pins: run `make tools`", t)
		}
		b.tools[t] = strings.TrimSpace(string(out))
	}

	if b.work, err = os.MkdirTemp("", "galley-bench-"); err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(os.Stderr, "bench: work directory kept: %s\n", b.work)
	} else {
		defer os.RemoveAll(b.work)
	}

	progress("building galley (as a release is built: version stamped, -trimpath)")
	b.galley = filepath.Join(b.work, "bin", "galley")
	if err := goBuild(ctx, root, b.galley, "0.0.0-bench"); err != nil {
		return err
	}
	if !o.noDev {
		progress("building galley as `make build` does (no version)")
		b.galleyDev = filepath.Join(b.work, "bin", "galley-dev")
		if err := goBuild(ctx, root, b.galleyDev, ""); err != nil {
			return err
		}
	}
	stackDir, changedDir, err := b.writeStacks()
	if err != nil {
		return err
	}

	if b.reg, err = startRegistry(ctx, b.tools["registry"], filepath.Join(b.work, "registry")); err != nil {
		return err
	}
	defer b.reg.stop()

	if o.maxLoad > 0 {
		waitLoad(ctx, o.maxLoad)
	}
	loadBefore := loadavg()
	start := time.Now()
	res, err := b.compare(ctx, stackDir, changedDir)
	if err != nil {
		return err
	}
	scale, err := b.scaling(ctx, o.scaleRuns)
	if err != nil {
		return err
	}
	if o.largeRuns > 0 {
		if res.large, err = b.large(ctx, o.largeRuns); err != nil {
			return err
		}
	}
	loadAfter := loadavg()

	var rep bytes.Buffer
	b.report(&rep, res, scale, loadBefore, loadAfter, time.Since(start))
	os.Stdout.Write(rep.Bytes())
	if o.out != "" {
		return os.WriteFile(o.out, rep.Bytes(), 0o644)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/galley-dev/galley\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from the galley checkout (no go.mod of github.com/galley-dev/galley above the current directory)")
		}
		dir = parent
	}
}

func goBuild(ctx context.Context, root, out, version string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/galley-dev/galley/cmd/galley/cli.version="+version)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/galley")...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building galley: %w", err)
	}
	return nil
}

// The grafana patch pipeline.sh applies with kustomize, as the stack says
// it; and the values change of the "one app changed" scenario.
const (
	patchCUE = `// Added by bench/compare: the patch bench/pipeline.sh applies with
// kustomize build, so both sides patch one app.
stack: apps: grafana: patches: [{
	target: {kind: "Deployment", name: "grafana"}
	patch: [{op: "add", path: "/spec/revisionHistoryLimit", value: 3}]
}]
`
	changedCUE = "stack: apps: metabase: values: podAnnotations: \"bench.galley.dev/run\": %q\n"
)

// allowOutsideRoot builds the copies of the real-charts stack: they sit in
// the work directory and name the charts in ../shared/charts by absolute
// path, outside any root that holds them both.
const allowOutsideRoot = "--allow-outside-root"

var (
	chartsLet  = regexp.MustCompile(`(?m)^(\s*let charts = )"[^"]*"`)
	packageCUE = regexp.MustCompile(`(?m)^package (\w+)$`)
)

// writeStacks copies the real-charts stack with the charts' absolute path
// and the grafana patch, twice: the stack, and the one whose metabase
// values each run of the "one app changed" scenario changes.
func (b *bench) writeStacks() (stackDir, changedDir string, err error) {
	src, err := os.ReadFile(filepath.Join(b.root, "testdata", "stacks", "real-charts", "stack.cue"))
	if err != nil {
		return "", "", err
	}
	if !chartsLet.Match(src) {
		return "", "", errors.New("testdata/stacks/real-charts/stack.cue: no `let charts = \"...\"` line to point at the charts")
	}
	pkg := packageCUE.FindSubmatch(src)
	if pkg == nil {
		return "", "", errors.New("testdata/stacks/real-charts/stack.cue: no package clause")
	}
	q, _ := json.Marshal(b.charts)
	cue := chartsLet.ReplaceAll(src, append([]byte("${1}"), q...))
	for _, dir := range []string{"stack", "stack-changed"} {
		d := filepath.Join(b.work, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(d, "stack.cue"), cue, 0o644); err != nil {
			return "", "", err
		}
		patch := fmt.Sprintf("package %s\n\n%s", pkg[1], patchCUE)
		if err := os.WriteFile(filepath.Join(d, "bench.cue"), []byte(patch), 0o644); err != nil {
			return "", "", err
		}
	}
	return filepath.Join(b.work, "stack"), filepath.Join(b.work, "stack-changed"), b.setChanged(filepath.Join(b.work, "stack-changed"), "0", string(pkg[1]))
}

func (b *bench) setChanged(dir, run, pkg string) error {
	if pkg == "" {
		src, err := os.ReadFile(filepath.Join(dir, "stack.cue"))
		if err != nil {
			return err
		}
		pkg = string(packageCUE.FindSubmatch(src)[1])
	}
	data := fmt.Sprintf("package %s\n\n%s", pkg, fmt.Sprintf(changedCUE, run))
	return os.WriteFile(filepath.Join(dir, "changed.cue"), []byte(data), 0o644)
}

// sample is one measured run: a command, or a sequence of them.
type sample struct {
	wall time.Duration
	cpu  time.Duration // user+system, children included
	rss  int64         // bytes, the largest of the commands (and their children)
}

func (s *sample) add(t sample) {
	s.wall += t.wall
	s.cpu += t.cpu
	s.rss = max(s.rss, t.rss)
}

// measure runs a command and returns its wall time and peak RSS (the
// largest resident set of the process and the children it waited for).
func measure(ctx context.Context, env []string, stdout io.Writer, name string, args ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	ps := cmd.ProcessState
	return sample{wall: wall, cpu: ps.UserTime() + ps.SystemTime(), rss: maxRSS(ps)}, nil
}

// scenario is one row of the table.
type scenario struct {
	name     string
	baseline string // the row it is compared with
	samples  []sample
	run      func(ctx context.Context, i int) (sample, error)
}

// median is the median wall and CPU times, and the largest RSS.
func (s *scenario) median() sample {
	var walls, cpus []time.Duration
	var rss int64
	for _, x := range s.samples {
		walls, cpus = append(walls, x.wall), append(cpus, x.cpu)
		rss = max(rss, x.rss)
	}
	return sample{wall: median(walls), cpu: median(cpus), rss: rss}
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Sorted(slices.Values(ds))
	if len(ds)%2 == 0 {
		return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return ds[len(ds)/2]
}

// results are the facts the targets are judged on, besides the times.
type results struct {
	scenarios []*scenario
	// digests counts the digests of the galley builds of the unchanged
	// stack, by binary: the bundle records galley's version, so the
	// release and dev builds differ from each other, never among
	// themselves.
	digests     map[string]map[string]int
	rendered    []int        // new render cache entries, per "changed" run
	repushed    []pushResult // re-push of the unchanged bundle
	changedPush []pushResult
	coldPush    []pushResult
	logUploads  map[string][]int // blob uploads the registry logged, per scenario
	large       []*scenario      // idle, push and pull of a 1 GiB layer
}

type buildResult struct {
	Digest string   `json:"digest"`
	Apps   []string `json:"apps"`
	Files  int      `json:"files"`
}

type pushResult struct {
	Digest   string `json:"digest"`
	Pushed   int    `json:"pushed"`
	Skipped  int    `json:"skipped"`
	Manifest bool   `json:"manifestPushed"`
}

const (
	rowScript       = "script: helm template x6, kustomize, tar+gzip, oras push"
	rowScriptBuild  = "script without the push (helm, kustomize, tar+gzip)"
	rowScriptPar    = "script, 2 charts at a time (JOBS=2)"
	rowCold         = "galley build, cold (empty render cache)"
	rowColdPush     = "galley build + push, cold"
	rowWarm         = "galley build, warm (nothing changed)"
	rowWarmPush     = "galley build + push, warm (re-push unchanged)"
	rowChanged      = "galley build, one app's values changed"
	rowChangedPush  = "galley build + push, one app's values changed"
	rowNoCache      = "galley build --no-cache"
	rowWarmDev      = "galley build, warm, unversioned dev build"
	repoWarm        = "galley-warm"
	repoChanged     = "galley-changed"
	stackTag        = "0.1.0"
	scriptRepo      = "script"
	coldRepoPattern = "galley-cold-%d"
)

func (b *bench) compare(ctx context.Context, stackDir, changedDir string) (*results, error) {
	res := &results{digests: map[string]map[string]int{"release": {}, "dev": {}}, logUploads: map[string][]int{}}
	baseEnv := environ()
	galleyEnv := func(cache string) []string { return append(slices.Clone(baseEnv), "GALLEY_CACHE_DIR="+cache) }
	scriptEnv := append(slices.Clone(baseEnv), "HELM="+b.tools["helm"], "KUSTOMIZE="+b.tools["kustomize"],
		"ORAS="+b.tools["oras"], "CHARTS="+b.charts)
	script := filepath.Join(b.root, "bench", "pipeline.sh")
	dir := func(parts ...string) string { return filepath.Join(append([]string{b.work}, parts...)...) }

	build := func(ctx context.Context, bin, cache, stack, out string) (sample, buildResult, error) {
		var stdout bytes.Buffer
		s, err := measure(ctx, galleyEnv(cache), &stdout, bin, "bundle", "build", allowOutsideRoot, stack, "-d", out, "--output", "json")
		var r buildResult
		if err == nil {
			err = json.Unmarshal(stdout.Bytes(), &r)
		}
		return s, r, err
	}
	// push pushes a layout to repo:tag; a changed bundle gets a new tag,
	// as galley refuses to move a released version.
	push := func(ctx context.Context, cache, layout, repo, tag string) (sample, pushResult, error) {
		var stdout bytes.Buffer
		s, err := measure(ctx, galleyEnv(cache), &stdout, b.galley, "bundle", "push", layout,
			"oci://"+b.reg.host+"/"+repo+":"+tag, "--plain-http", "--output", "json")
		var r pushResult
		if err == nil {
			err = json.Unmarshal(stdout.Bytes(), &r)
		}
		return s, r, err
	}
	// uploads counts, from the registry's access log, the blob uploads a
	// push made to repo.
	uploads := func(name, repo string, f func() (sample, error)) (sample, error) {
		before := b.reg.uploads(repo)
		s, err := f()
		if err == nil {
			res.logUploads[name] = append(res.logUploads[name], b.reg.uploads(repo)-before)
		}
		return s, err
	}

	// Warm caches, the repositories re-pushed to, and a first run of the
	// script (the page cache holds the charts and binaries for every run).
	progress("warming up")
	warmCache, changedCache := dir("cache-warm"), dir("cache-changed")
	for _, c := range []string{warmCache, changedCache} {
		if _, _, err := build(ctx, b.galley, c, stackDir, dir("out-prime")); err != nil {
			return nil, err
		}
	}
	if _, _, err := build(ctx, b.galley, changedCache, changedDir, dir("out-prime-changed")); err != nil {
		return nil, err
	}
	if _, _, err := push(ctx, warmCache, dir("out-prime"), repoWarm, stackTag); err != nil {
		return nil, err
	}
	if _, _, err := push(ctx, changedCache, dir("out-prime-changed"), repoChanged, stackTag); err != nil {
		return nil, err
	}
	if _, err := measure(ctx, scriptEnv, io.Discard, script, dir("script-prime")); err != nil {
		return nil, err
	}
	if b.galleyDev != "" {
		if _, _, err := build(ctx, b.galleyDev, dir("cache-dev"), stackDir, dir("out-dev")); err != nil {
			return nil, err
		}
	}

	digest := func(r buildResult) { res.digests["release"][r.Digest]++ }
	scenarios := []*scenario{
		{name: rowScript, run: func(ctx context.Context, i int) (sample, error) {
			repo := fmt.Sprintf("%s-%d", scriptRepo, i)
			return uploads(rowScript, repo, func() (sample, error) {
				return measure(ctx, scriptEnv, io.Discard, script, dir("script"), b.reg.host+"/"+repo+":"+stackTag)
			})
		}},
		{name: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			return measure(ctx, scriptEnv, io.Discard, script, dir("script-build"))
		}},
		{name: rowScriptPar, run: func(ctx context.Context, i int) (sample, error) {
			repo := fmt.Sprintf("%s-par-%d", scriptRepo, i)
			return measure(ctx, append(slices.Clone(scriptEnv), "JOBS=2"), io.Discard, script, dir("script-par"), b.reg.host+"/"+repo+":"+stackTag)
		}},
		{name: rowCold, baseline: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			s, r, err := build(ctx, b.galley, dir(fmt.Sprintf("cache-cold-%d", i)), stackDir, dir("out-cold"))
			digest(r)
			return s, err
		}},
		{name: rowColdPush, baseline: rowScript, run: func(ctx context.Context, i int) (sample, error) {
			cache := dir(fmt.Sprintf("cache-coldpush-%d", i))
			s, r, err := build(ctx, b.galley, cache, stackDir, dir("out-coldpush"))
			if err != nil {
				return s, err
			}
			digest(r)
			repo := fmt.Sprintf(coldRepoPattern, i)
			p, err := uploads(rowColdPush, repo, func() (sample, error) {
				p, pr, err := push(ctx, cache, dir("out-coldpush"), repo, stackTag)
				res.coldPush = append(res.coldPush, pr)
				return p, err
			})
			s.add(p)
			return s, err
		}},
		{name: rowWarm, baseline: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			s, r, err := build(ctx, b.galley, warmCache, stackDir, dir("out-warm"))
			digest(r)
			return s, err
		}},
		{name: rowWarmPush, baseline: rowScript, run: func(ctx context.Context, i int) (sample, error) {
			s, r, err := build(ctx, b.galley, warmCache, stackDir, dir("out-warmpush"))
			if err != nil {
				return s, err
			}
			digest(r)
			p, err := uploads(rowWarmPush, repoWarm, func() (sample, error) {
				p, pr, err := push(ctx, warmCache, dir("out-warmpush"), repoWarm, stackTag)
				res.repushed = append(res.repushed, pr)
				return p, err
			})
			s.add(p)
			return s, err
		}},
		{name: rowChanged, baseline: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			if err := b.setChanged(changedDir, fmt.Sprintf("build-%d", i), ""); err != nil {
				return sample{}, err
			}
			before := countFiles(filepath.Join(changedCache, "render"))
			s, _, err := build(ctx, b.galley, changedCache, changedDir, dir("out-changed"))
			res.rendered = append(res.rendered, countFiles(filepath.Join(changedCache, "render"))-before)
			return s, err
		}},
		{name: rowChangedPush, baseline: rowScript, run: func(ctx context.Context, i int) (sample, error) {
			if err := b.setChanged(changedDir, fmt.Sprintf("push-%d", i), ""); err != nil {
				return sample{}, err
			}
			before := countFiles(filepath.Join(changedCache, "render"))
			s, _, err := build(ctx, b.galley, changedCache, changedDir, dir("out-changedpush"))
			res.rendered = append(res.rendered, countFiles(filepath.Join(changedCache, "render"))-before)
			if err != nil {
				return s, err
			}
			p, err := uploads(rowChangedPush, repoChanged, func() (sample, error) {
				p, pr, err := push(ctx, changedCache, dir("out-changedpush"), repoChanged, fmt.Sprintf("0.2.%d", i))
				res.changedPush = append(res.changedPush, pr)
				return p, err
			})
			s.add(p)
			return s, err
		}},
		{name: rowNoCache, baseline: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			var stdout bytes.Buffer
			s, err := measure(ctx, galleyEnv(dir("cache-unused")), &stdout, b.galley, "bundle", "build", "--no-cache", allowOutsideRoot, stackDir, "-d", dir("out-nocache"), "--output", "json")
			var r buildResult
			if err == nil {
				err = json.Unmarshal(stdout.Bytes(), &r)
			}
			digest(r)
			return s, err
		}},
	}
	if b.galleyDev != "" {
		scenarios = append(scenarios, &scenario{name: rowWarmDev, baseline: rowScriptBuild, run: func(ctx context.Context, i int) (sample, error) {
			s, r, err := build(ctx, b.galleyDev, dir("cache-dev"), stackDir, dir("out-dev"))
			res.digests["dev"][r.Digest]++
			return s, err
		}})
	}
	for i := range b.runs {
		progress("run %d of %d (load %s)", i+1, b.runs, loadavg())
		for _, sc := range scenarios {
			s, err := sc.run(ctx, i)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			sc.samples = append(sc.samples, s)
		}
	}
	res.scenarios = scenarios
	return res, nil
}

// countFiles counts the regular files under dir (the render cache
// entries, for the "one app changed" scenario).
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}

type scalePoint struct {
	apps       int
	cold, warm time.Duration // medians
	rss        int64
}

// scaling builds synthetic stacks of 10, 50 and 200 apps, without the
// cache (every chart rendered twice) and from a warm cache.
func (b *bench) scaling(ctx context.Context, runs int) ([]scalePoint, error) {
	var points []scalePoint
	for _, n := range []int{10, 50, 200} {
		progress("scaling: %d apps (load %s)", n, loadavg())
		dir := filepath.Join(b.work, fmt.Sprintf("synthetic-%d", n))
		if err := stackgen.Write(dir, stackgen.Options{Apps: n}); err != nil {
			return nil, err
		}
		cache := filepath.Join(b.work, fmt.Sprintf("cache-synthetic-%d", n))
		env := append(environ(), "GALLEY_CACHE_DIR="+cache)
		out := filepath.Join(b.work, fmt.Sprintf("out-synthetic-%d", n))
		cold := &scenario{}
		warm := &scenario{}
		for range runs {
			s, err := measure(ctx, env, io.Discard, b.galley, "bundle", "build", "--no-cache", dir, "-d", out)
			if err != nil {
				return nil, err
			}
			cold.samples = append(cold.samples, s)
		}
		if _, err := measure(ctx, env, io.Discard, b.galley, "bundle", "build", dir, "-d", out); err != nil {
			return nil, err
		}
		for range runs {
			s, err := measure(ctx, env, io.Discard, b.galley, "bundle", "build", dir, "-d", out)
			if err != nil {
				return nil, err
			}
			warm.samples = append(warm.samples, s)
		}
		c, w := cold.median(), warm.median()
		points = append(points, scalePoint{apps: n, cold: c.wall, warm: w.wall, rss: max(c.rss, w.rss)})
	}
	return points, nil
}

func (b *bench) report(w io.Writer, res *results, scale []scalePoint, before, after string, took time.Duration) {
	version := func(name string, args ...string) string {
		out, _ := exec.Command(b.tools[name], args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(strings.TrimPrefix(line, "Version:"))
	}
	fmt.Fprintf(w, "galley bench: the six real charts (testdata/stacks/real-charts + one grafana patch), %d runs of each row, interleaved\n", b.runs)
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs (GOMAXPROCS %d); load average %s before, %s after; %s in all\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), before, after, took.Round(time.Second))
	fmt.Fprintf(w, "tools: helm %s, kustomize %s, oras %s, registry %s\n\n",
		version("helm", "version", "--short"), version("kustomize", "version"), version("oras", "version"),
		strings.TrimPrefix(version("registry", "--version"), b.tools["registry"]+" "))

	med := map[string]sample{}
	for _, sc := range res.scenarios {
		med[sc.name] = sc.median()
	}
	var rows [][]string
	for _, sc := range res.scenarios {
		m := med[sc.name]
		ratio := ""
		if sc.baseline != "" {
			ratio = fmt.Sprintf("%.2f (of %s)", m.wall.Seconds()/med[sc.baseline].wall.Seconds(),
				map[string]string{rowScript: "script", rowScriptBuild: "script w/o push"}[sc.baseline])
		}
		rows = append(rows, []string{sc.name, secs(m.wall), secs(m.cpu), mib(m.rss), ratio})
	}
	table(w, []string{"what", "median wall", "CPU (user+sys)", "peak RSS", "galley / script (wall)"}, rows)
	fmt.Fprintf(w, "\nblob uploads the registry logged per push: script %v, galley cold %v, galley re-push unchanged %v, galley one app changed %v\n",
		res.logUploads[rowScript], res.logUploads[rowColdPush], res.logUploads[rowWarmPush], res.logUploads[rowChangedPush])
	fmt.Fprintf(w, "galley --output json: re-push unchanged %s; one app changed %s\n", pushes(res.repushed), pushes(res.changedPush))
	fmt.Fprintf(w, "charts rendered per \"one app changed\" build (new render cache entries): %v\n", res.rendered)
	sameDigest := true
	for _, bin := range []string{"release", "dev"} {
		ds := res.digests[bin]
		if len(ds) == 0 {
			continue
		}
		n := 0
		for _, c := range ds {
			n += c
		}
		sameDigest = sameDigest && len(ds) == 1
		fmt.Fprintf(w, "digests of the %d builds of the unchanged stack by the %s binary: %s\n",
			n, bin, strings.Join(slices.Sorted(maps.Keys(ds)), ", "))
	}
	fmt.Fprintln(w, "\nscaling: synthetic stacks (bench/genstack), median of the runs")
	rows = nil
	for i, p := range scale {
		// The marginal cost of an app, from the previous size: fixed
		// costs (process start, CUE, packing) cancel out.
		marginal := func(d func(scalePoint) time.Duration) string {
			if i == 0 {
				return ""
			}
			q := scale[i-1]
			return ms((d(p) - d(q)) / time.Duration(p.apps-q.apps))
		}
		cold := func(p scalePoint) time.Duration { return p.cold }
		warm := func(p scalePoint) time.Duration { return p.warm }
		rows = append(rows, []string{fmt.Sprint(p.apps), secs(p.cold), ms(p.cold / time.Duration(p.apps)), marginal(cold),
			secs(p.warm), ms(p.warm / time.Duration(p.apps)), marginal(warm), mib(p.rss)})
	}
	table(w, []string{"apps", "--no-cache", "per app", "marginal", "warm", "per app", "marginal", "peak RSS"}, rows)
	if len(res.large) > 0 {
		fmt.Fprintf(w, "\na bundle with a 1 GiB layer (internal/largelayout), median of %d runs\n", len(res.large[0].samples))
		rows = nil
		idle := res.large[0].median().rss
		for _, sc := range res.large {
			m := sc.median()
			rows = append(rows, []string{sc.name, secs(m.wall), secs(m.cpu), mib(m.rss), "+" + mib(m.rss-idle)})
		}
		table(w, []string{"what", "median wall", "CPU (user+sys)", "peak RSS", "over the idle binary"}, rows)
	}
	fmt.Fprintln(w, "\ntargets")
	ratio := func(a, b string) float64 { return med[a].wall.Seconds() / med[b].wall.Seconds() }
	target := func(ok bool, format string, args ...any) {
		mark := "MET    "
		if !ok {
			mark = "NOT MET"
		}
		fmt.Fprintf(w, "  %s  %s\n", mark, fmt.Sprintf(format, args...))
	}
	r := ratio(rowColdPush, rowScript)
	target(r <= 0.5, "cold build+push <= 1/2 of the script: %.2f", r)
	r = ratio(rowCold, rowScriptBuild)
	target(r <= 0.5, "cold build <= 1/2 of the script without its push: %.2f", r)
	r = med[rowCold].cpu.Seconds() / med[rowScriptBuild].cpu.Seconds()
	target(r <= 0.8, "cold build's CPU <= 0.8 of the script's without its push: %.2f", r)
	r = ratio(rowWarmPush, rowScript)
	target(r <= 0.05, "warm build+push <= 0.05 of the script: %.2f", r)
	r = ratio(rowWarm, rowScriptBuild)
	target(r <= 0.05, "warm build <= 0.05 of the script without its push: %.2f", r)
	target(allEqual(res.rendered, 1), "one app's values changed: only that app rendered (%v)", res.rendered)
	zero := len(res.repushed) > 0
	for i, p := range res.repushed {
		zero = zero && p.Pushed == 0 && !p.Manifest && res.logUploads[rowWarmPush][i] == 0
	}
	target(zero, "re-push unchanged: zero blob uploads (%s; registry log %v)", pushes(res.repushed), res.logUploads[rowWarmPush])
	one := len(res.changedPush) > 0
	for i, p := range res.changedPush {
		one = one && p.Pushed == 1 && res.logUploads[rowChangedPush][i] == 1
	}
	target(one, "push of a changed bundle: only the new layer (%s; registry log %v)", pushes(res.changedPush), res.logUploads[rowChangedPush])
	peak := max(med[rowCold].rss, med[rowColdPush].rss, med[rowNoCache].rss)
	target(peak <= 300<<20, "peak RSS of the six-chart build <= 300 MiB: %s", mib(peak))
	if len(scale) > 1 {
		lo, hi := scale[0], scale[len(scale)-1]
		per := func(p scalePoint) float64 { return p.cold.Seconds() / float64(p.apps) }
		g := per(hi) / per(lo)
		target(g <= 1.5, "build time per app roughly constant from %d to %d apps: x%.2f (--no-cache), x%.2f (warm)",
			lo.apps, hi.apps, g, (hi.warm.Seconds()/float64(hi.apps))/(lo.warm.Seconds()/float64(lo.apps)))
	}
	target(sameDigest, "same digest cold, warm and --no-cache (each binary)")
	if len(res.large) == 3 {
		idle := res.large[0].median().rss
		over := max(res.large[1].median().rss, res.large[2].median().rss) - idle
		target(over <= 64<<20, "push and pull of a 1 GiB layer within 64 MiB of the idle binary's peak RSS: +%s", mib(over))
	}
}

const (
	rowLargeIdle = "galley version (the idle binary)"
	rowLargePush = "galley bundle push <layout> of a 1 GiB layer"
	rowLargePull = "galley bundle pull -d of a 1 GiB layer"
)

// large pushes and pulls a bundle whose layer is 1 GiB of incompressible
// files (internal/largelayout), against the idle binary: the peak RSS must
// not grow with the layer.
func (b *bench) large(ctx context.Context, runs int) ([]*scenario, error) {
	progress("writing a layout with a 1 GiB layer")
	layout := filepath.Join(b.work, "large")
	desc, err := largelayout.Write(layout)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(layout)
	progress("layer %s, %d bytes", desc.Digest, desc.Size)
	env := append(environ(), "GALLEY_CACHE_DIR="+filepath.Join(b.work, "cache-large"))
	ref := func(i int) string { return fmt.Sprintf("oci://%s/large-%d:1.0.0", b.reg.host, i) }
	rows := []*scenario{
		{name: rowLargeIdle, run: func(ctx context.Context, _ int) (sample, error) {
			return measure(ctx, env, io.Discard, b.galley, "version")
		}},
		{name: rowLargePush, run: func(ctx context.Context, i int) (sample, error) {
			return measure(ctx, env, io.Discard, b.galley, "bundle", "push", layout, ref(i), "--plain-http")
		}},
		{name: rowLargePull, run: func(ctx context.Context, i int) (sample, error) {
			out := filepath.Join(b.work, fmt.Sprintf("large-pulled-%d", i))
			defer os.RemoveAll(out)
			return measure(ctx, env, io.Discard, b.galley, "bundle", "pull", ref(i), "-d", out, "--plain-http")
		}},
	}
	for i := range runs {
		for _, sc := range rows {
			progress("run %d/%d: %s", i+1, runs, sc.name)
			s, err := sc.run(ctx, i)
			if err != nil {
				return nil, err
			}
			sc.samples = append(sc.samples, s)
		}
	}
	return rows, nil
}

// table prints a Markdown table, the first column left-aligned and the
// others right-aligned, padded so that it also reads as plain text.
func table(w io.Writer, head []string, rows [][]string) {
	width := make([]int, len(head))
	for _, r := range append([][]string{head}, rows...) {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				fmt.Fprintf(w, "| %s%s ", c, pad)
			} else {
				fmt.Fprintf(w, "| %s%s ", pad, c)
			}
		}
		fmt.Fprintln(w, "|")
	}
	line(head)
	for i := range head {
		if i == 0 {
			fmt.Fprintf(w, "|:%s", strings.Repeat("-", width[i]+1))
		} else {
			fmt.Fprintf(w, "|%s:", strings.Repeat("-", width[i]+1))
		}
	}
	fmt.Fprintln(w, "|")
	for _, r := range rows {
		line(r)
	}
}

func allEqual(xs []int, v int) bool {
	if len(xs) == 0 {
		return false
	}
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return true
}

func pushes(ps []pushResult) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%d up/%d skipped, manifest %v", p.Pushed, p.Skipped, p.Manifest))
	}
	if len(parts) == 0 {
		return "none"
	}
	// Identical runs are the rule: say it once.
	if slices.Equal(parts, slices.Repeat(parts[:1], len(parts))) {
		return fmt.Sprintf("%s (x%d)", parts[0], len(parts))
	}
	return strings.Join(parts, "; ")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
func ms(d time.Duration) string   { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func mib(n int64) string          { return fmt.Sprintf("%d MiB", (n+(1<<19))>>20) }

// environ is the environment of every measured command: this one without
// galley's, the registry's and OpenTelemetry's settings, and without
// SOURCE_DATE_EPOCH (galley uses a fixed date then).
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GALLEY_") || strings.HasPrefix(k, "REGISTRY_") || strings.HasPrefix(k, "OTEL_") || k == "SOURCE_DATE_EPOCH" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// loadavg is the 1, 5 and 15 minute load averages, "?" where there are
// none.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func waitLoad(ctx context.Context, limit float64) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var l float64
		if _, err := fmt.Sscan(loadavg(), &l); err != nil || l < limit {
			return
		}
		progress("load %s: waiting for it to fall below %.2f", loadavg(), limit)
		select {
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
		}
	}
}

// registry is a CNCF Distribution registry on 127.0.0.1, with its storage
// and log in a directory of its own.
type registry struct {
	cmd     *exec.Cmd
	host    string
	logPath string
	done    chan struct{}
}

var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

func startRegistry(ctx context.Context, bin, dir string) (*registry, error) {
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	q, _ := json.Marshal(storage)
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: galley-bench-not-a-secret
`, q)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	r := &registry{logPath: filepath.Join(dir, "registry.log"), done: make(chan struct{})}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	// Not CommandContext: stop() ends it, also after ctx is cancelled.
	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Env = environ()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("starting the registry: %w", err)
	}
	pw.Close()
	addr := make(chan string, 1)
	go func() {
		defer close(r.done)
		defer logFile.Close()
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for s.Scan() {
			fmt.Fprintln(logFile, s.Text())
			if m := listening.FindStringSubmatch(s.Text()); !found && m != nil {
				found = true
				addr <- m[1]
			}
		}
		io.Copy(logFile, pr)
		pr.Close()
		r.cmd.Wait()
	}()
	select {
	case r.host = <-addr:
	case <-r.done:
		return nil, fmt.Errorf("the registry exited: see %s", r.logPath)
	case <-time.After(30 * time.Second):
		r.stop()
		return nil, fmt.Errorf("the registry did not start within 30s: see %s", r.logPath)
	case <-ctx.Done():
		r.stop()
		return nil, ctx.Err()
	}
	for start := time.Now(); ; {
		resp, err := http.Get("http://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Since(start) > 30*time.Second {
			r.stop()
			return nil, fmt.Errorf("the registry at %s is not ready: %v", r.host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *registry) stop() {
	if r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	}
}

// uploads counts the completed blob uploads to repo in the registry's
// access log (the PUT that closes each upload). The log is written after
// the response, so it waits a moment for the last lines.
func (r *registry) uploads(repo string) int {
	time.Sleep(200 * time.Millisecond)
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return -1
	}
	return bytes.Count(b, []byte(`"PUT /v2/`+repo+`/blobs/uploads/`))
}
