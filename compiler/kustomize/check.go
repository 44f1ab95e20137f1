package kustomize

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	//lint:ignore SA1019 these are the builtin plugins krusty runs; there is no other export of them
	"sigs.k8s.io/kustomize/api/builtins"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// loadDocs parses the object documents into a resource map, one object per
// document, with errors naming the document. from maps each object to its
// document.
func loadDocs(rf *resource.Factory, docs [][]byte, objIdx []int) (m resmap.ResMap, from map[*resource.Resource]int, err error) {
	m = resmap.New()
	from = make(map[*resource.Resource]int, len(objIdx))
	for _, i := range objIdx {
		rs, err := rf.SliceFromBytes(docs[i])
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(rs) != 1 {
			return nil, nil, fmt.Errorf("document %d: holds %d objects; pass one object per document", i, len(rs))
		}
		if v, ok := rs[0].GetAnnotations()[konfig.IgnoredByKustomizeAnnotation]; ok && v != "false" {
			return nil, nil, fmt.Errorf("document %d: annotated %s, which Kustomize drops", i, konfig.IgnoredByKustomizeAnnotation)
		}
		if err := m.Append(rs[0]); err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i, err)
		}
		from[rs[0]] = i
	}
	return m, from, nil
}

// checkDocs finds the document that makes Kustomize fail, if any.
func checkDocs(docs [][]byte, objIdx []int) error {
	_, _, err := loadDocs(provider.NewDefaultDepProvider().GetResourceFactory(), docs, objIdx)
	return err
}

// checkPatches replays the namespace step and the patches, in order, on
// Kustomize's own resource map with the same builtin plugins krusty runs,
// checking that each patch parses, matches at least one object and applies.
// Krusty alone would skip a patch that matches nothing and report a failing
// patch without saying which one. It returns the documents whose objects
// survive the patches and the ids those objects end with.
func checkPatches(docs [][]byte, objIdx []int, o Options) (kept []int, ids []resid.ResId, err error) {
	rf := provider.NewDefaultDepProvider().GetResourceFactory()
	m, from, err := loadDocs(rf, docs, objIdx)
	if err != nil {
		return nil, nil, err
	}
	h := resmap.NewPluginHelpers(nil, nil, resmap.NewFactory(rf), nil)
	if o.Namespace != "" {
		p := &builtins.NamespaceTransformerPlugin{}
		if err := configure(p, h, namespaceConfig(o.Namespace)); err != nil {
			return nil, nil, fmt.Errorf("configuring namespace: %w", err)
		}
		if err := p.Transform(m); err != nil {
			return nil, nil, fmt.Errorf("setting namespace: %w", err)
		}
	}
	for i, pt := range o.Patches {
		if err := checkPatch(m, h, i, pt); err != nil {
			return nil, nil, err
		}
	}
	for _, r := range m.Resources() {
		i, ok := from[r]
		if !ok {
			return nil, nil, fmt.Errorf("patches made a new object %s", r.CurId())
		}
		kept = append(kept, i)
		ids = append(ids, r.CurId())
	}
	return kept, ids, nil
}

func checkPatch(m resmap.ResMap, h *resmap.PluginHelpers, i int, pt Patch) error {
	p := &builtins.PatchTransformerPlugin{}
	if err := configure(p, h, patchConfig(i, pt)); err != nil {
		return fmt.Errorf("patch %d: %w", i, err)
	}
	sel, err := m.Select(*pt.Target.selector())
	if err != nil {
		return fmt.Errorf("patch %d: target %s: %w", i, pt.Target, err)
	}
	if len(sel) == 0 {
		return fmt.Errorf("patch %d: target %s matches no object", i, pt.Target)
	}
	if err := p.Transform(m); err != nil {
		return fmt.Errorf("patch %d (target %s): %w", i, pt.Target, err)
	}
	return nil
}

// targetPatches checks the form of each patch and gives every strategic
// merge patch without a target the target of the object it names, so that
// matching works the same for all patches: by kind and name, in any
// namespace unless the patch names one. (Kustomize would match such a patch
// by its exact id, where no namespace means "default", so it would miss the
// objects the namespace step moved.)
func targetPatches(ps []Patch) ([]Patch, error) {
	out := make([]Patch, len(ps))
	for i, p := range ps {
		var v any
		if err := yaml.Unmarshal([]byte(p.Patch), &v); err != nil {
			return nil, fmt.Errorf("patch %d: not YAML: %w", i, err)
		}
		switch v := v.(type) {
		case []any:
			if p.Target == nil {
				return nil, fmt.Errorf("patch %d: a JSON6902 patch (an operation list) needs a target", i)
			}
			// Kustomize reads a patch starting with "[" as JSON, so a
			// YAML flow list would fail there; hand it JSON.
			j, err := yaml.YAMLToJSON([]byte(p.Patch))
			if err != nil {
				return nil, fmt.Errorf("patch %d: %w", i, err)
			}
			p.Patch = string(j)
		case map[string]any:
			nodes, err := kio.FromBytes([]byte(p.Patch))
			if err != nil {
				return nil, fmt.Errorf("patch %d: %w", i, err)
			}
			if len(nodes) != 1 {
				return nil, fmt.Errorf("patch %d: holds %d objects; give one object per patch", i, len(nodes))
			}
			if nodes[0].GetKind() == "" || nodes[0].GetName() == "" {
				return nil, fmt.Errorf("patch %d: a strategic merge patch needs kind and metadata.name (with a target, any name will do)", i)
			}
			if p.Target == nil {
				t, err := ownTarget(nodes[0])
				if err != nil {
					return nil, fmt.Errorf("patch %d: %w", i, err)
				}
				p.Target = t
			}
		default:
			return nil, fmt.Errorf("patch %d: want a strategic merge patch (an object) or a JSON6902 operation list, got %s", i, yamlType(v))
		}
		out[i] = p
	}
	return out, nil
}

func ownTarget(n *kyaml.RNode) (*Target, error) {
	av, kind, name := n.GetApiVersion(), n.GetKind(), n.GetName()
	if av == "" {
		return nil, fmt.Errorf("a strategic merge patch without a target needs apiVersion")
	}
	gv, err := schema.ParseGroupVersion(av)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", av, err)
	}
	t := &Target{
		Group:   regexp.QuoteMeta(gv.Group),
		Version: regexp.QuoteMeta(gv.Version),
		Kind:    regexp.QuoteMeta(kind),
		Name:    regexp.QuoteMeta(name),
	}
	if ns := n.GetNamespace(); ns != "" {
		t.Namespace = regexp.QuoteMeta(ns)
	}
	return t, nil
}

func yamlType(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func configure(p resmap.Configurable, h *resmap.PluginHelpers, cfg map[string]any) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return p.Config(h, b)
}

// Cheap filters before parsing a document as a CustomResourceDefinition.
var (
	crdKind      = regexp.MustCompile(`(?m)^kind:\s*["']?CustomResourceDefinition["']?\s*$`)
	clusterScope = regexp.MustCompile(`(?m)^\s+scope:\s*["']?Cluster["']?\s*$`)
)

// unsetClusterScopedNamespaces removes the namespace the namespace step gave
// custom resources that a CustomResourceDefinition among docs declares
// cluster-scoped: Kustomize only knows the scope of built-in kinds and
// treats every other kind as namespaced.
func unsetClusterScopedNamespaces(docs [][]byte, objs []*resource.Resource) error {
	cluster := map[resid.Gvk]bool{} // group and kind only
	for i, d := range docs {
		if objs[i] == nil || !crdKind.Match(d) || !clusterScope.Match(d) {
			continue
		}
		var crd struct {
			APIVersion string `json:"apiVersion"`
			Spec       struct {
				Group string `json:"group"`
				Scope string `json:"scope"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(d, &crd); err != nil {
			return fmt.Errorf("document %d: reading CustomResourceDefinition: %w", i, err)
		}
		if strings.HasPrefix(crd.APIVersion, "apiextensions.k8s.io/") && crd.Spec.Scope == "Cluster" {
			cluster[resid.Gvk{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}] = true
		}
	}
	if len(cluster) == 0 {
		return nil
	}
	for i, r := range objs {
		if r == nil || r.GetNamespace() == "" {
			continue
		}
		gvk := r.GetGvk()
		if !cluster[resid.Gvk{Group: gvk.Group, Kind: gvk.Kind}] {
			continue
		}
		var in struct {
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(docs[i], &in); err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
		if in.Metadata.Namespace != "" {
			continue
		}
		if err := r.SetNamespace(""); err != nil {
			return fmt.Errorf("document %d: unsetting namespace: %w", i, err)
		}
	}
	return nil
}
