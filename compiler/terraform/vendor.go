package terraform

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// lockFile is Terraform's dependency lock file: vendored so that CI
// installs the provider versions the module was tested with.
const lockFile = ".terraform.lock.hcl"

// Limits on a source module: a Terraform module is a few dozen small
// files, so a directory far larger is a mistaken source (the stack's root,
// a home directory) that would otherwise be walked to the end.
// (Variables so that tests can lower them.)
var (
	maxEntries       = 20000
	maxBytes   int64 = 64 << 20
)

// vendoredSuffixes are the files copied from a source module.
var vendoredSuffixes = []string{".tf", ".tf.json", ".tfvars", ".tfvars.json", ".md"}

// vendored says whether a file of a source module belongs in the bundle.
// Hidden files are editor or tool state, except the lock file.
func vendored(name string) bool {
	if name == lockFile {
		return true
	}
	if strings.HasPrefix(name, ".") {
		return false
	}
	for _, s := range vendoredSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}

// skippedDir says whether a directory of a source module is left out:
// .terraform (providers, modules and state a local init downloaded),
// terraform.tfstate.d (local workspace state) and hidden directories such
// as .git.
func skippedDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "terraform.tfstate.d"
}

// vendor reads the files of a source module, keyed by slash-separated path
// relative to dir. Symlinks are refused: a bundle holds regular files only,
// and a link could pull in files from outside the module.
func vendor(dir string) (map[string][]byte, Errors, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, Errors{{Field: FieldSource, Msg: fmt.Sprintf("module directory %s: %v", dir, unwrapPathError(err))}}, nil
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, nil, fmt.Errorf("reading module %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, Errors{{Field: FieldSource, Msg: fmt.Sprintf("%s is not a directory: source names a module directory", dir)}}, nil
	}
	files := map[string][]byte{}
	var errs Errors
	entries, size := 0, int64(0)
	tooLarge := errors.New("too large")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading module %s: %w", dir, err)
		}
		if entries++; entries > maxEntries {
			return tooLarge
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("reading module %s: %w", dir, err)
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		name := d.Name()
		switch {
		case d.IsDir():
			if skippedDir(name) {
				return filepath.SkipDir
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			if strings.HasPrefix(name, ".") && name != lockFile {
				return nil
			}
			errs = append(errs, &Error{
				Field: FieldSource,
				File:  &Pos{Filename: filepath.Join(dir, filepath.FromSlash(rel))},
				Msg:   "a symlink: galley vendors regular files only; copy the file or directory into the module",
			})
			return nil
		case !d.Type().IsRegular() || !vendored(name):
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading module %s: %w", dir, err)
		}
		if size += int64(len(b)); size > maxBytes {
			return tooLarge
		}
		files[rel] = b
		return nil
	})
	if errors.Is(err, tooLarge) {
		return nil, Errors{{Field: FieldSource, Msg: fmt.Sprintf("%s holds more than %d entries or %d MiB of Terraform files: is it the module's own directory?", dir, maxEntries, maxBytes>>20)}}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if len(errs) > 0 {
		return nil, errs, nil
	}
	return files, nil, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isTerraformFile says whether a vendored or generated file is Terraform
// configuration read by `terraform init` in its directory.
func isTerraformFile(name string) bool {
	return strings.HasSuffix(name, ".tf") || strings.HasSuffix(name, ".tf.json")
}

// isVarsFile says whether a file holds variable values (HCL or JSON).
func isVarsFile(name string) bool {
	return strings.HasSuffix(name, ".tfvars") || strings.HasSuffix(name, ".tfvars.json")
}

// autoLoaded says whether Terraform reads a root-level variables file
// without a -var-file flag.
func autoLoaded(rel string) bool {
	if strings.Contains(rel, "/") {
		return false
	}
	switch {
	case rel == "terraform.tfvars", rel == "terraform.tfvars.json":
		return true
	case strings.HasSuffix(rel, ".auto.tfvars"), strings.HasSuffix(rel, ".auto.tfvars.json"):
		return true
	}
	return false
}

// topLevel says whether rel is in the module directory itself, not in a
// nested module.
func topLevel(rel string) bool { return path.Dir(rel) == "." }
