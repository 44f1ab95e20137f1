package airgap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/galley-dev/galley/bundles"
)

// Relocation says how to rewrite a bundle's files for a private registry.
type Relocation struct {
	// Images maps an image reference, exactly as the bundle writes it, to
	// its replacement. Every YAML string value equal to a key is replaced,
	// wherever it is (containers, CRD image fields, env values), and so is
	// every image list of bundle.json.
	Images map[string]string
	// Source replaces the oci:// URL of the Argo CD sources
	// (Application spec.source.repoURL and spec.sources[].repoURL,
	// AppProject spec.sourceRepos[]) and of Flux OCIRepository spec.url.
	// Galley writes those for the bundle itself. "" leaves them.
	Source string
}

// RelocateResult is the relocated tree and what changed.
type RelocateResult struct {
	Tree *bundles.Tree
	// Changed lists the files rewritten, sorted.
	Changed []string
	// Images and Sources count the values replaced in YAML files.
	Images, Sources int
}

// Relocate returns a copy of t rewritten as r says. YAML files keep every
// byte but the values replaced, so a diff shows only those. Files other
// than YAML and bundle.json are copied unchanged.
func Relocate(t *bundles.Tree, r Relocation) (*RelocateResult, error) {
	res := &RelocateResult{Tree: bundles.NewTree()}
	for _, f := range t.Files() {
		data := f.Data
		switch {
		case f.Path == bundles.IndexPath:
			b, err := relocateIndex(data, r.Images)
			if err != nil {
				return nil, err
			}
			data = b
		case isYAML(f.Path):
			b, images, sources, err := relocateYAML(data, r)
			if err != nil {
				return nil, fmt.Errorf("relocating %s: %w", f.Path, err)
			}
			data = b
			res.Images += images
			res.Sources += sources
		}
		if !bytes.Equal(data, f.Data) {
			res.Changed = append(res.Changed, f.Path)
		}
		if err := res.Tree.Add(f.Path, data); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func isYAML(p string) bool {
	ext := path.Ext(p)
	return ext == ".yaml" || ext == ".yml"
}

func relocateYAML(data []byte, r Relocation) (out []byte, images, sources int, err error) {
	ss, err := scalars(data)
	if err != nil {
		return nil, 0, 0, err
	}
	edits := map[*yaml.Node]string{}
	for _, s := range ss {
		if to, ok := r.Images[s.node.Value]; ok {
			edits[s.node] = to
			images++
			continue
		}
		if r.Source != "" && isBundleSource(s) && strings.HasPrefix(s.node.Value, "oci://") && !strings.Contains(s.node.Value, "*") {
			if s.node.Value != r.Source {
				edits[s.node] = r.Source
				sources++
			}
		}
	}
	out, err = replaceScalars(data, edits)
	return out, images, sources, err
}

// isBundleSource reports whether s is where galley's Argo CD and Flux
// objects name the bundle's repository.
func isBundleSource(s yamlScalar) bool {
	group, _, _ := strings.Cut(s.apiVersion, "/")
	switch {
	case group == "argoproj.io" && s.kind == "Application":
		return s.at("spec", "source", "repoURL") || s.at("spec", "sources", "*", "repoURL")
	case group == "argoproj.io" && s.kind == "AppProject":
		return s.at("spec", "sourceRepos", "*")
	case group == "source.toolkit.fluxcd.io" && s.kind == "OCIRepository":
		return s.at("spec", "url")
	}
	return false
}

// relocateIndex rewrites the image lists of bundle.json, keeping them
// sorted and unique as the compiler writes them. It refuses an index with
// fields this galley does not know rather than drop them.
func relocateIndex(data []byte, images map[string]string) ([]byte, error) {
	var x bundles.Index
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("relocating %s: %w (a bundle from a newer galley? upgrade galley)", bundles.IndexPath, err)
	}
	if x.SchemaVersion > bundles.IndexSchemaVersion {
		return nil, fmt.Errorf("relocating %s: index version %d is newer than this galley understands (%d): upgrade galley", bundles.IndexPath, x.SchemaVersion, bundles.IndexSchemaVersion)
	}
	changed := false
	relocate := func(list []string) []string {
		if list == nil {
			return nil
		}
		out := make([]string, 0, len(list))
		for _, im := range list {
			if to, ok := images[im]; ok {
				im, changed = to, true
			}
			out = append(out, im)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	x.Images = relocate(x.Images)
	for i := range x.Apps {
		x.Apps[i].Images = relocate(x.Apps[i].Images)
	}
	for i := range x.Jobs {
		x.Jobs[i].Images = relocate(x.Jobs[i].Images)
	}
	if !changed {
		return data, nil
	}
	return x.Marshal()
}
