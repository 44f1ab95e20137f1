// Package scaffold writes a new stack from one of galley's templates: a
// stack that vets and builds at once, for a team to edit rather than to
// write from nothing.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

//go:embed all:templates
var templates embed.FS

// Delivery engines a stack can be delivered with.
const (
	ArgoCD = "argocd"
	Flux   = "flux"
	Both   = "both"
)

// Options say what to write.
type Options struct {
	// Template is the name of a template (Templates lists them); ""
	// means minimal.
	Template string
	// Name is the stack's name, a DNS-1123 label; "" means the base name
	// of the directory.
	Name string
	// Delivery is argocd, flux or both; "" means argocd.
	Delivery string
	// Registry is where the bundle is pushed, host[:port]/path without
	// oci://; "" means registry.example.com/platform.
	Registry string
}

// Templates lists the templates, sorted.
func Templates() []string {
	entries, _ := fs.ReadDir(templates, "templates")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// ErrExists is returned when the directory already holds a file the
// template writes: init never overwrites.
var ErrExists = errors.New("file exists")

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	registry = regexp.MustCompile(`^[^/@: ]+(:[0-9]+)?(/[a-z0-9._-]+)*$`)
)

// Write writes the template into dir (created if missing) and returns
// the files written, relative to dir and sorted. Nothing is written when
// any of them exists already.
func Write(dir string, o Options) ([]string, error) {
	if o.Template == "" {
		o.Template = "minimal"
	}
	if o.Delivery == "" {
		o.Delivery = ArgoCD
	}
	if o.Registry == "" {
		o.Registry = "registry.example.com/platform"
	}
	o.Registry = strings.TrimSuffix(strings.TrimPrefix(o.Registry, "oci://"), "/")
	if o.Name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", dir, err)
		}
		o.Name = strings.ToLower(filepath.Base(abs))
	}
	switch {
	case !dnsLabel.MatchString(o.Name) || len(o.Name) > 63:
		return nil, fmt.Errorf("stack name %q must be a DNS-1123 label (lower-case letters, digits and '-'): give one with --name", o.Name)
	case o.Delivery != ArgoCD && o.Delivery != Flux && o.Delivery != Both:
		return nil, fmt.Errorf("delivery %q must be argocd, flux or both", o.Delivery)
	case !registry.MatchString(o.Registry):
		return nil, fmt.Errorf("registry %q must be <host>[:port][/path], such as registry.example.com/platform", o.Registry)
	}
	root := path.Join("templates", o.Template)
	if _, err := fs.Stat(templates, root); err != nil {
		return nil, fmt.Errorf("no template %q (templates: %s)", o.Template, strings.Join(Templates(), ", "))
	}

	files, err := render(root, o)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("%s: %w; init writes only into a new or empty directory", filepath.Join(dir, name), ErrExists)
		}
	}
	var written []string
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		err := os.MkdirAll(filepath.Dir(p), 0o755)
		if err == nil {
			err = os.WriteFile(p, files[name], 0o644)
		}
		if err != nil {
			for _, w := range written {
				_ = os.Remove(filepath.Join(dir, w)) // leave no half stack
			}
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		written = append(written, name)
	}
	return names, nil
}

// render runs every file of the template through text/template with
// [[ ]] delimiters, which chart templates ({{ }}) do not use; a file
// named *.tmpl loses the suffix.
func render(root string, o Options) (map[string][]byte, error) {
	data := struct {
		Options
		Package      string
		ArgoCD, Flux bool
	}{Options: o, Package: strings.ReplaceAll(o.Name, "-", "_"), ArgoCD: o.Delivery != Flux, Flux: o.Delivery != ArgoCD}
	out := map[string][]byte{}
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, root+"/")
		if strings.HasSuffix(name, ".tmpl") {
			name = strings.TrimSuffix(name, ".tmpl")
			t, err := template.New(name).Delims("[[", "]]").Option("missingkey=error").Parse(string(b))
			if err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, data); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			b = buf.Bytes()
		}
		out[name] = b
		return nil
	})
	return out, err
}
