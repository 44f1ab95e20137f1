package charts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/stack"
)

// VendorDir is where `galley charts vendor` copies the locked charts, relative to
// the stack directory. Builds prefer a chart found there.
const VendorDir = "vendor/charts"

// VendorFile is the name of e's chart in VendorDir: <name>-<version>.tgz.
func VendorFile(e Entry) string { return e.Name + "-" + e.Version + ".tgz" }

// identity is what makes sources distinct, as Entry.identity.
func (s Source) identity() string {
	return strings.Join([]string{s.Name, s.OCI, s.Repository, s.Constraint, keyFingerprint(s), keyringFingerprint(s)}, "\x00")
}

// located is a source and the first app (in the stack or an environment)
// that names it, for positions in errors.
type located struct {
	src Source
	app *stack.App
}

// Prepare loads the remote charts of s, every one as galley.lock pins
// it, and returns them by app name; apps with a chart at a path are not
// in the map. A chart the lock has no entry for, or a stale one, is an
// error at the app's chart in the stack that says to run `galley lock`;
// with Options.UpdateLock it is resolved instead and the lock rewritten
// (entries for other charts are kept). Errors about apps are
// stack.Errors, all of them at once; they also match the sentinels
// (ErrNotLocked, ErrStale, ErrDigestMismatch...) with errors.Is.
func Prepare(ctx context.Context, s *stack.Stack, o Options) (map[string]*helm.Chart, error) {
	var (
		wants []located
		errs  appErrors
	)
	for _, a := range s.Apps {
		src, ok, err := SourceOf(s, a)
		if err != nil {
			errs.add(a, "chart.verify", err)
			continue
		}
		if ok {
			wants = append(wants, located{src, a})
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(wants) == 0 {
		return nil, nil
	}
	lock, err := ReadLock(s.Dir)
	if err != nil {
		return nil, err
	}
	r := NewResolver(o)
	defer r.Close()

	entries := make([]Entry, len(wants))
	updated := false
	for i, w := range wants {
		e, err := lock.Find(w.src)
		if err == nil {
			entries[i] = *e
			continue
		}
		if !o.UpdateLock || !(errors.Is(err, ErrNotLocked) || errors.Is(err, ErrStale)) {
			errs.add(w.app, "chart", err)
			continue
		}
		ne, err := r.Resolve(ctx, w.src, lock)
		if err != nil {
			errs.add(w.app, "chart", err)
			continue
		}
		if lock == nil {
			lock = &Lock{LockVersion: LockVersion}
		}
		lock.Put(ne)
		entries[i], updated = ne, true
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if updated {
		if err := WriteLock(s.Dir, lock); err != nil {
			return nil, err
		}
	}

	// Load each locked chart once, several at a time: apps may share one.
	type loaded struct {
		once sync.Once
		ch   *helm.Chart
		err  error
	}
	byDigest := map[string]*loaded{}
	for _, e := range entries {
		if byDigest[e.Digest] == nil {
			byDigest[e.Digest] = &loaded{}
		}
	}
	vendor := filepath.Join(s.Dir, filepath.FromSlash(VendorDir))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, e := range entries {
		l := byDigest[e.Digest]
		g.Go(func() error {
			l.once.Do(func() { l.ch, l.err = r.Load(gctx, e, vendor) })
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]*helm.Chart, len(wants))
	for i, w := range wants {
		l := byDigest[entries[i].Digest]
		if l.err != nil {
			errs.add(w.app, "chart", fmt.Errorf("chart %s %s: %w", entries[i].Name, entries[i].Version, l.err))
			continue
		}
		out[w.app.Name] = l.ch
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// LockResult is what LockStack did.
type LockResult struct {
	// Path is the lock file written.
	Path string
	Lock *Lock
	// Changes has one element per entry of the new lock, in its order,
	// then one per entry dropped.
	Changes []Change
}

// Change is what happened to one lock entry.
type Change struct {
	Entry Entry
	// Previous is the old entry for the same source and constraint, nil
	// for a new one.
	Previous *Entry
	// Removed: the stack no longer names Entry's source.
	Removed bool
}

// LockStack resolves every remote chart of the stack in dir, in the stack and
// in each of its environments, to its newest version within the stack's
// range, fills the cache, and writes galley.lock beside the stack. A
// version the old lock pins with other content is an ErrUpstreamChanged
// error: published charts must not change. Entries the stack no longer
// needs are dropped.
func LockStack(ctx context.Context, dir string, o Options) (*LockResult, error) {
	if o.Offline {
		return nil, kinded(ErrOffline, "locking charts needs the network")
	}
	s, srcs, err := stackSources(ctx, dir)
	if err != nil {
		return nil, err
	}
	old, err := ReadLock(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w (fix it, or delete it to lock from scratch)", err)
	}
	r := NewResolver(o)
	defer r.Close()
	l := &Lock{LockVersion: LockVersion, Charts: []Entry{}}
	var errs appErrors
	for _, w := range srcs {
		e, err := r.Resolve(ctx, w.src, old)
		if err != nil {
			errs.add(w.app, "chart", err)
			continue
		}
		l.Put(e)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	l.sort()
	res := &LockResult{Path: filepath.Join(s.Dir, LockFile), Lock: l}
	if old == nil && len(l.Charts) == 0 {
		// Nothing to lock and no lock to empty: write nothing.
		res.Path = ""
		return res, nil
	}
	if err := WriteLock(s.Dir, l); err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, e := range l.Charts {
		c := Change{Entry: e}
		if old != nil {
			for i := range old.Charts {
				if old.Charts[i].identity() == e.identity() {
					prev := old.Charts[i]
					c.Previous = &prev
					kept[prev.identity()] = true
				}
			}
		}
		res.Changes = append(res.Changes, c)
	}
	if old != nil {
		for _, e := range old.Charts {
			if !kept[e.identity()] {
				res.Changes = append(res.Changes, Change{Entry: e, Removed: true})
			}
		}
	}
	return res, nil
}

// VendorResult is what VendorStack did.
type VendorResult struct {
	// Dir is the vendor directory.
	Dir string
	// Files are the charts vendored, by file name in Dir, sorted; Written
	// those copied now (the others were there already).
	Files   []string
	Written []string
	// Removed are the .tgz files of Dir the lock no longer names.
	Removed []string
}

// VendorStack copies the charts galley.lock pins for the stack in dir into
// dir/vendor/charts, checked against their digests, so the stack builds
// with no cache and no network. The lock must be up to date with the
// stack. Charts in the directory the lock no longer names are removed.
func VendorStack(ctx context.Context, dir string, o Options) (*VendorResult, error) {
	s, srcs, err := stackSources(ctx, dir)
	if err != nil {
		return nil, err
	}
	lock, err := ReadLock(s.Dir)
	if err != nil {
		return nil, err
	}
	var (
		errs    appErrors
		entries []Entry
		byFile  = map[string]Entry{}
	)
	for _, w := range srcs {
		e, err := lock.Find(w.src)
		if err != nil {
			errs.add(w.app, "chart", err)
			continue
		}
		f := VendorFile(*e)
		if prev, ok := byFile[f]; ok {
			if prev.Digest != e.Digest {
				errs.add(w.app, "chart", fmt.Errorf("cannot vendor %s %s from both %s and %s: their archives differ and would share %s", e.Name, e.Version, prev.source(), e.source(), f))
			}
			continue
		}
		byFile[f] = *e
		entries = append(entries, *e)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	vdir := filepath.Join(s.Dir, filepath.FromSlash(VendorDir))
	res := &VendorResult{Dir: vdir}
	if len(entries) == 0 && !isDir(vdir) {
		return res, nil
	}
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", vdir, err)
	}
	r := NewResolver(o)
	defer r.Close()
	for _, e := range entries {
		f := VendorFile(e)
		res.Files = append(res.Files, f)
		dst := filepath.Join(vdir, f)
		if d, err := fileDigest(dst); err == nil && d == e.Digest {
			continue
		}
		src, err := r.local(ctx, e, "")
		if err != nil {
			return nil, fmt.Errorf("vendoring %s %s: %w", e.Name, e.Version, err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("vendoring %s %s: %w", e.Name, e.Version, err)
		}
		// Checked again: the file read is the file written.
		if got := bytesDigest(data); got != e.Digest {
			return nil, &MismatchError{What: "cached chart", Path: src, Want: e.Digest, Got: got, Hint: "it changed while galley read it"}
		}
		if err := writeFileAtomic(dst, data); err != nil {
			return nil, fmt.Errorf("vendoring %s %s: %w", e.Name, e.Version, err)
		}
		res.Written = append(res.Written, f)
	}
	des, err := os.ReadDir(vdir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", vdir, err)
	}
	for _, de := range des {
		if _, ok := byFile[de.Name()]; ok || de.IsDir() || !strings.HasSuffix(de.Name(), ".tgz") {
			continue
		}
		if err := os.Remove(filepath.Join(vdir, de.Name())); err != nil {
			return nil, fmt.Errorf("removing a chart the lock no longer names: %w", err)
		}
		res.Removed = append(res.Removed, de.Name())
	}
	sort.Strings(res.Files)
	sort.Strings(res.Written)
	return res, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// stackSources loads the stack in dir, and once more for each of its
// environments, and returns the remote chart sources of all of them, each
// once, with the first app that names it.
func stackSources(ctx context.Context, dir string) (*stack.Stack, []located, error) {
	base, err := stack.Load(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	stacks := []*stack.Stack{base}
	for _, env := range base.Environments() {
		s, err := stack.Load(ctx, dir, stack.WithEnvironment(env))
		if err != nil {
			return nil, nil, err
		}
		stacks = append(stacks, s)
	}
	var (
		out  []located
		seen = map[string]bool{}
		errs appErrors
	)
	for _, s := range stacks {
		for _, a := range s.Apps {
			src, ok, err := SourceOf(s, a)
			if err != nil {
				errs.add(a, "chart.verify", err)
				continue
			}
			if !ok || seen[src.identity()] {
				continue
			}
			seen[src.identity()] = true
			out = append(out, located{src, a})
		}
	}
	if err := errs.err(); err != nil {
		return nil, nil, err
	}
	return base, out, nil
}

// appErrors collects errors about apps, placed at their CUE positions.
type appErrors struct {
	list   stack.Errors
	causes []error
}

func (e *appErrors) add(a *stack.App, field string, err error) {
	e.list = append(e.list, &stack.Error{Pos: a.Pos(field), Path: "stack.apps." + a.Name + "." + field, Msg: err.Error()})
	e.causes = append(e.causes, err)
}

func (e *appErrors) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return &AppErrors{Errors: e.list, causes: e.causes}
}

// AppErrors are errors about apps' charts: stack.Errors with positions
// (errors.As finds them, and the CLI prints them), which also unwrap to
// the errors behind them for errors.Is.
type AppErrors struct {
	Errors stack.Errors
	causes []error
}

func (e *AppErrors) Error() string { return e.Errors.Error() }

// Unwrap returns the stack.Errors, then each cause.
func (e *AppErrors) Unwrap() []error { return append([]error{e.Errors}, e.causes...) }
