package airgap

import (
	"fmt"
	"slices"
	"strings"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/registry"
)

// Kinds of ExternalRef.
const (
	RefImage  = "image"
	RefSource = "source"
)

// ExternalRef is a reference of a bundle to a registry or repository
// outside the allowed ones.
type ExternalRef struct {
	// File is the bundle file that holds it.
	File string `json:"file"`
	// Field is where in the file: spec.template.spec.containers[0].image,
	// or apps[airflow].images in bundle.json.
	Field string `json:"field"`
	// Kind is RefImage or RefSource (a repository Argo CD or Flux reads).
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
	// Host is the registry or server it points at; "" when Ref does not
	// parse as a reference at all.
	Host string `json:"host"`
}

// ExternalRefs lists every image reference and every Argo CD or Flux source
// of the bundle tree t whose host is not one of allowed (host[:port];
// docker.io and index.docker.io are the same). It reads:
//
//   - the image lists of bundle.json;
//   - every "image" string field of every YAML file (containers and the
//     image fields of most CRDs) and every value listed in bundle.json;
//   - Argo CD Application repoURLs and AppProject sourceRepos, Flux source
//     URLs (OCIRepository, GitRepository, HelmRepository, Bucket).
//
// An empty result means the bundle deploys from the allowed registries
// alone. The result is sorted by file, then field.
func ExternalRefs(t *bundles.Tree, allowed []string) ([]ExternalRef, error) {
	ok := map[string]bool{}
	for _, h := range allowed {
		ok[registry.NormalizeHost(h)] = true
	}
	var out []ExternalRef
	add := func(file, field, kind, ref, host string) {
		if host != "" && ok[registry.NormalizeHost(host)] {
			return
		}
		out = append(out, ExternalRef{File: file, Field: field, Kind: kind, Ref: ref, Host: host})
	}
	var images map[string]bool
	if _, found := t.Get(bundles.IndexPath); found {
		x, err := bundles.ReadIndex(t)
		if err != nil {
			return nil, err
		}
		images = map[string]bool{}
		check := func(field string, list []string) {
			for _, im := range list {
				images[im] = true
				add(bundles.IndexPath, field, RefImage, im, imageHost(im))
			}
		}
		check("images", x.Images)
		for _, a := range x.Apps {
			check("apps["+a.Name+"].images", a.Images)
		}
		for _, j := range x.Jobs {
			check("jobs["+j.Name+"].images", j.Images)
		}
	}
	for _, f := range t.Files() {
		if !isYAML(f.Path) {
			continue
		}
		ss, err := scalars(f.Data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Path, err)
		}
		for _, s := range ss {
			v := s.node.Value
			switch {
			case isSource(s):
				if v != "*" {
					add(f.Path, s.field(), RefSource, v, sourceHost(v))
				}
			case s.key() == "image" || images[v]:
				if v != "" {
					add(f.Path, s.field(), RefImage, v, imageHost(v))
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b ExternalRef) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return strings.Compare(a.Field, b.Field)
	})
	return out, nil
}

// isSource reports whether s names a repository Argo CD or Flux pulls from.
func isSource(s yamlScalar) bool {
	if isBundleSource(s) {
		return true
	}
	group, _, _ := strings.Cut(s.apiVersion, "/")
	switch {
	case group == "argoproj.io" && s.kind == "ApplicationSet":
		return s.at("spec", "template", "spec", "source", "repoURL") || s.at("spec", "template", "spec", "sources", "*", "repoURL")
	case group == "source.toolkit.fluxcd.io":
		return s.at("spec", "url")
	}
	return false
}
