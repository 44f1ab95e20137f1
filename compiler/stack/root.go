package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Root confines the files a stack names: chart paths, values files, chart
// verification keys and keyrings, Terraform module sources, vendored
// charts and galley.lock, and what CUE reads (the package's files, its
// imports, @embed files). Each must resolve, after following symbolic
// links, inside the root. Stacks come from pull requests in CI: without a
// root, a values file such as ../../.docker/config.json would put the
// runner's credentials into a rendered diff or a pushed bundle. This is
// kustomize's LoadRestrictionsRootOnly, with a root wide enough for
// monorepos.
//
// The zero value is the safe default.
type Root struct {
	// Dir is the directory the files must be in. "" means the Git
	// repository that holds the stack directory (found by its .git, as
	// git does), or the stack directory itself when it is in none.
	Dir string
	// AllowOutside lets the stack read files anywhere. Only for stacks
	// whose every file is trusted.
	AllowOutside bool
}

// Widened says whether r departs from the default, which a bundle
// records so a reviewer can see it.
func (r Root) Widened() bool { return r.Dir != "" || r.AllowOutside }

// WithRoot sets the root the stack's files must be in (see Root).
func WithRoot(r Root) Option {
	return func(o *options) { o.root = r }
}

// Flags a user can give to widen the root, named in errors: the library
// speaks the CLI's language here because that is what the reader can act on.
const rootHint = "move the file inside the root, or, for a stack you trust, widen it with --root DIR or turn the check off with --allow-outside-root"

// resolvedRoot is a Root made concrete for one stack.
type resolvedRoot struct {
	Root
	// dir is the root, absolute with its links resolved; "" when
	// AllowOutside.
	dir string
	// origin says where dir comes from, for errors.
	origin string
	// rel is dir relative to the stack directory, slash-separated.
	rel string
}

// resolveRoot finds the root of the stack in dir (absolute).
func resolveRoot(dir string, r Root) (resolvedRoot, error) {
	rr := resolvedRoot{Root: r}
	if r.AllowOutside {
		return rr, nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return rr, fmt.Errorf("resolving stack directory: %w", err)
	}
	if r.Dir != "" {
		abs, err := filepath.Abs(r.Dir)
		if err != nil {
			return rr, fmt.Errorf("resolving --root %s: %w", r.Dir, err)
		}
		if rr.dir, err = filepath.EvalSymlinks(abs); err != nil {
			return rr, fmt.Errorf("resolving --root %s: %w", r.Dir, unwrapPath(err))
		}
		if fi, err := os.Stat(rr.dir); err != nil || !fi.IsDir() {
			return rr, fmt.Errorf("--root %s is not a directory", r.Dir)
		}
		rr.origin = "set by --root"
		if !inside(rr.dir, real) {
			return rr, fmt.Errorf("the stack directory %s is outside the root %s given by --root: the root must hold the stack", dir, rr.dir)
		}
		rel, err := filepath.Rel(real, rr.dir)
		if err != nil {
			return rr, fmt.Errorf("resolving --root %s: %w", r.Dir, err)
		}
		rr.rel = filepath.ToSlash(rel)
		return rr, nil
	}
	if repo, ok := gitRoot(real); ok {
		rr.dir, rr.origin = repo, "the Git repository that holds the stack"
		return rr, nil
	}
	rr.dir, rr.origin = real, "the stack directory, which is in no Git repository"
	return rr, nil
}

// gitRoot is the top of the Git working tree holding dir: the nearest
// directory with a .git entry (a directory, or a file in a linked worktree
// or submodule), as `git rev-parse --show-toplevel` finds it.
func gitRoot(dir string) (string, bool) {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d, true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// inside says whether path p is root or below it; both must be clean and
// absolute.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolve follows the symbolic links of an absolute path. A path that does
// not exist resolves as far as it does, so that ../../missing is still seen
// to be outside the root (and reported as such, not as missing).
func resolve(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := resolve(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

// RootDir is the directory the stack's files must be in, absolute with its
// links resolved; "" when the stack was loaded with Root.AllowOutside.
func (s *Stack) RootDir() string { return s.root.dir }

// Root is the root the stack was loaded with, as the caller gave it.
func (s *Stack) Root() Root { return s.root.Root }

// RootRel is a root given as Root.Dir relative to the stack directory,
// slash-separated (".." for the parent): what a bundle records, the same
// in every checkout. It is "" for the default root and with AllowOutside.
func (s *Stack) RootRel() string { return s.root.rel }

// CheckInRoot returns an error unless the file or directory at p (as the
// stack writes it, relative to Stack.Dir) resolves inside the stack's
// root; what names it in the message ("values file", "chart").
func (s *Stack) CheckInRoot(what, p string) error {
	return s.root.check(what, p, s.Path(p))
}

// check is CheckInRoot for the file at abs, shown as p.
func (r resolvedRoot) check(what, p, abs string) error {
	if r.AllowOutside {
		return nil
	}
	real, err := resolve(abs)
	if err != nil {
		return fmt.Errorf("resolving %s %s: %w", what, p, err)
	}
	if inside(r.dir, real) {
		return nil
	}
	where := "resolves to " + real + ", outside"
	if real == filepath.Clean(abs) && filepath.IsAbs(filepath.FromSlash(p)) {
		where = "is outside"
	}
	return &OutsideRootError{Msg: fmt.Sprintf("%s %s %s the root %s (%s): %s", what, p, where, r.dir, r.origin, rootHint)}
}

// OutsideRootError is a file a stack names that resolves outside its root.
type OutsideRootError struct{ Msg string }

func (e *OutsideRootError) Error() string { return e.Msg }

// ErrOutsideRoot matches every *OutsideRootError with errors.Is.
var ErrOutsideRoot = errors.New("file outside the stack's root")

// Is makes errors.Is(err, ErrOutsideRoot) true.
func (e *OutsideRootError) Is(target error) bool { return target == ErrOutsideRoot }

// checkRoot places CheckInRoot's error at a field of the app.
func (s *Stack) checkRoot(a *App, field, what, p string) *Error {
	if err := s.CheckInRoot(what, p); err != nil {
		return a.errAt(field, "%s", err.Error())
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
