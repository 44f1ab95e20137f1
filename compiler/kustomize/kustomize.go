// Package kustomize applies Kustomize patches, labels, annotations, image
// overrides and a default namespace to rendered Kubernetes objects.
//
// It runs Kustomize in-process (krusty, on an in-memory filesystem), never the
// kustomize binary, so the result is what `kustomize build` gives for the
// equivalent kustomization, with these choices made for galley:
//
//   - Steps run in a fixed order: namespace, patches (in the given order),
//     labels, annotations, images. Patches therefore see the namespace that
//     Options.Namespace fills in, and image overrides also apply to images a
//     patch has set.
//   - Namespace fills in metadata.namespace only on namespaced objects that
//     have none (helm template leaves it empty unless a chart sets it), and the
//     namespace of ServiceAccount subjects of (Cluster)RoleBindings that have
//     none. It never moves an object that already names a namespace, never
//     renames Namespace objects, and leaves cluster-scoped objects alone,
//     including custom resources whose CustomResourceDefinition (scope:
//     Cluster) is among the input documents. Kustomize takes any other kind
//     it does not know for namespaced, so a cluster-scoped custom resource
//     whose CRD comes from elsewhere does get the namespace.
//   - A strategic merge patch without a target applies to the objects of
//     its apiVersion, kind and name, in any namespace unless it names one.
//   - Labels and annotations go to metadata only, never to selectors or pod
//     templates, so adding one never changes a selector or restarts a pod.
//   - A patch that matches no object is an error, as is a malformed patch.
//     Errors name the patch by its index in Options.Patches and a document
//     by its index in the input.
//   - Output keeps each object's key order and comments (the "# Source:"
//     lines of helm template); Kustomize's CLI would sort keys instead.
//   - Image overrides that match no container are not errors: one list of
//     overrides may serve several apps.
package kustomize

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler/manifest"
)

// Target selects the objects a patch applies to. Empty fields match
// anything. Group, Version, Kind, Name and Namespace are anchored regular
// expressions, as in Kustomize; the selectors are Kubernetes label selector
// expressions ("app=web,tier!=db").
type Target struct {
	Group, Version, Kind, Name, Namespace string
	LabelSelector, AnnotationSelector     string
}

// String formats t the way errors show it.
func (t Target) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("group", t.Group)
	add("version", t.Version)
	add("kind", t.Kind)
	add("name", t.Name)
	add("namespace", t.Namespace)
	add("labelSelector", t.LabelSelector)
	add("annotationSelector", t.AnnotationSelector)
	if len(parts) == 0 {
		return "any object"
	}
	return strings.Join(parts, ",")
}

func (t Target) selector() *types.Selector {
	s := &types.Selector{LabelSelector: t.LabelSelector, AnnotationSelector: t.AnnotationSelector}
	s.Group, s.Version, s.Kind = t.Group, t.Version, t.Kind
	s.Name, s.Namespace = t.Name, t.Namespace
	return s
}

// Patch is one Kustomize patch. Patch holds YAML (or JSON) that is either a
// strategic merge patch (an object with apiVersion, kind and metadata.name)
// or a JSON6902 operation list; the form is detected as Kustomize does. A
// JSON6902 patch needs a Target. A strategic merge patch without a Target
// applies to the object with its kind, name and namespace. On custom
// resources a strategic merge patch acts as a JSON merge patch: lists are
// replaced, not merged.
type Patch struct {
	Target *Target
	Patch  string
}

// Image overrides the images of containers, init containers and image
// volumes whose image name is Name. NewTag and Digest are exclusive.
type Image struct {
	Name, NewName, NewTag, Digest string
}

// Options says what Apply does. The zero value does nothing.
type Options struct {
	// Namespace is set on namespaced objects that have no namespace.
	Namespace string
	// Patches are applied in order.
	Patches []Patch
	// Labels are added to (and override) metadata.labels of every object.
	Labels map[string]string
	// PodTemplates adds Labels and Annotations to the pod templates of
	// workloads as well (never to selectors).
	PodTemplates bool
	// Annotations are added to (and override) metadata.annotations of
	// every object.
	Annotations map[string]string
	// Images override container images.
	Images []Image
}

func (o Options) empty() bool {
	return o.Namespace == "" && len(o.Patches) == 0 && len(o.Labels) == 0 &&
		len(o.Annotations) == 0 && len(o.Images) == 0
}

// Apply returns docs with o applied. Each element of docs is one YAML (or
// JSON) document holding one Kubernetes object. The result keeps the order
// of docs: documents holding no object (empty, or only comments) pass
// through unchanged, objects a patch deletes ($patch: delete) are left out,
// and every other object comes back as one YAML document, re-encoded by
// Kustomize with its key order and comments kept. When o does nothing,
// Apply returns docs itself without running Kustomize.
//
// Objects Kustomize would drop (annotated config.kubernetes.io/local-config)
// make Apply fail rather than vanish.
func Apply(docs [][]byte, o Options) ([][]byte, error) {
	if o.empty() {
		return docs, nil
	}
	if err := o.validate(); err != nil {
		return nil, err
	}

	var objIdx []int
	for i, d := range docs {
		if !isEmptyDoc(d) {
			objIdx = append(objIdx, i)
		}
	}
	if len(objIdx) == 0 {
		return docs, nil
	}

	patches, err := targetPatches(o.Patches)
	if err != nil {
		return nil, err
	}
	o.Patches = patches
	// Kustomize emits the objects of its resource list in order (no
	// generators, no reordering), less those a patch deletes.
	kept, want := objIdx, []resid.ResId(nil)
	if len(o.Patches) > 0 {
		// Kustomize silently skips a patch whose target matches nothing
		// and does not say which patch failed; replaying the steps up to
		// the patches on Kustomize's own resource map finds both, and
		// which objects survive.
		kept, want, err = checkPatches(docs, objIdx, o)
		if err != nil {
			return nil, err
		}
	}

	m, err := run(docs, objIdx, o)
	if err != nil {
		if derr := checkDocs(docs, objIdx); derr != nil {
			return nil, derr
		}
		return nil, fmt.Errorf("running kustomize: %w", err)
	}
	res := m.Resources()
	if len(res) != len(kept) {
		if derr := checkDocs(docs, objIdx); derr != nil {
			return nil, derr
		}
		return nil, fmt.Errorf("kustomize returned %d objects for %d documents", len(res), len(kept))
	}
	objs := make([]*resource.Resource, len(docs))
	for j, r := range res {
		if want != nil && !r.CurId().Equals(want[j]) {
			return nil, fmt.Errorf("document %d: kustomize returned %s, want %s", kept[j], r.CurId(), want[j])
		}
		objs[kept[j]] = r
	}
	if o.Namespace != "" {
		if err := unsetClusterScopedNamespaces(docs, objs); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, 0, len(docs))
	for i, d := range docs {
		r := objs[i]
		switch {
		case r != nil:
			// RNode.String, not AsYAML: the same content without the
			// round trip through JSON that sorts keys and costs a third
			// of the run.
			y, err := r.RNode.String()
			if err != nil {
				return nil, fmt.Errorf("document %d: encoding: %w", i, err)
			}
			out = append(out, []byte(y))
		case isEmptyDoc(d):
			out = append(out, d)
		}
	}
	return out, nil
}

const root = "/galley"

func docFile(i int) string { return fmt.Sprintf("document-%d.yaml", i) }

// run builds the kustomization for o in memory and runs krusty on it.
func run(docs [][]byte, objIdx []int, o Options) (resmap.ResMap, error) {
	fs := filesys.MakeFsInMemory()
	k := types.Kustomization{
		TypeMeta: types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
	}
	for _, i := range objIdx {
		name := docFile(i)
		if err := fs.WriteFile(path.Join(root, name), docs[i]); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
		k.Resources = append(k.Resources, name)
	}
	ts, err := transformers(o)
	if err != nil {
		return nil, err
	}
	k.Transformers = ts
	ky, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encoding kustomization: %w", err)
	}
	if err := fs.WriteFile(path.Join(root, "kustomization.yaml"), ky); err != nil {
		return nil, fmt.Errorf("writing kustomization: %w", err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionNone
	return krusty.MakeKustomizer(opts).Run(fs, root)
}

// podTemplatePaths are where each workload kind keeps its pod template.
var podTemplatePaths = []struct{ group, kind, path string }{
	{"apps", "Deployment", "spec/template/metadata"},
	{"apps", "StatefulSet", "spec/template/metadata"},
	{"apps", "DaemonSet", "spec/template/metadata"},
	{"apps", "ReplicaSet", "spec/template/metadata"},
	{"", "ReplicationController", "spec/template/metadata"},
	{"batch", "Job", "spec/template/metadata"},
	{"batch", "CronJob", "spec/jobTemplate/metadata"},
	{"batch", "CronJob", "spec/jobTemplate/spec/template/metadata"},
}

// metadataFieldSpecs says where labels or annotations (field) go: every
// object's metadata, and with pods the pod templates of workloads, each
// kind named so that no other object grows a spec.template.
func metadataFieldSpecs(field string, pods bool) []any {
	specs := []any{map[string]any{"path": "metadata/" + field, "create": true}}
	if pods {
		for _, p := range podTemplatePaths {
			specs = append(specs, map[string]any{"group": p.group, "kind": p.kind, "path": p.path + "/" + field, "create": true})
		}
	}
	return specs
}

// transformers returns the inline builtin transformer configurations for o,
// in the order they run. Listing every step under `transformers` (rather
// than the namespace, patches, labels and images fields, which Kustomize
// runs in its own fixed order) sets that order and the options the
// kustomization fields do not expose (unsetOnly, metadata-only annotations).
func transformers(o Options) ([]string, error) {
	var cfgs []any
	if o.Namespace != "" {
		cfgs = append(cfgs, namespaceConfig(o.Namespace))
	}
	for i, p := range o.Patches {
		cfgs = append(cfgs, patchConfig(i, p))
	}
	if len(o.Labels) > 0 {
		cfgs = append(cfgs, map[string]any{
			"apiVersion": "builtin",
			"kind":       "LabelTransformer",
			"metadata":   map[string]any{"name": "galley-labels"},
			"labels":     o.Labels,
			"fieldSpecs": metadataFieldSpecs("labels", o.PodTemplates),
		})
	}
	if len(o.Annotations) > 0 {
		cfgs = append(cfgs, map[string]any{
			"apiVersion":  "builtin",
			"kind":        "AnnotationsTransformer",
			"metadata":    map[string]any{"name": "galley-annotations"},
			"annotations": o.Annotations,
			"fieldSpecs":  metadataFieldSpecs("annotations", o.PodTemplates),
		})
	}
	for i, im := range o.Images {
		cfgs = append(cfgs, map[string]any{
			"apiVersion": "builtin",
			"kind":       "ImageTagTransformer",
			"metadata":   map[string]any{"name": fmt.Sprintf("galley-image-%d", i)},
			"imageTag": types.Image{
				Name: im.Name, NewName: im.NewName, NewTag: im.NewTag, Digest: im.Digest,
			},
			"fieldSpecs": imageFieldSpecs,
		})
	}
	out := make([]string, 0, len(cfgs))
	for _, c := range cfgs {
		b, err := yaml.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encoding transformer config: %w", err)
		}
		out = append(out, string(b))
	}
	return out, nil
}

func namespaceConfig(ns string) map[string]any {
	return map[string]any{
		"apiVersion": "builtin",
		"kind":       "NamespaceTransformer",
		"metadata":   map[string]any{"name": "galley-namespace", "namespace": ns},
		"unsetOnly":  true,
		// RoleBinding subjects of kind ServiceAccount are invalid without
		// a namespace; with unsetOnly only those get one.
		"setRoleBindingSubjects": "allServiceAccounts",
		// No field specs: Kustomize's defaults would rename Namespace
		// objects and create spec.service on local APIServices.
		"fieldSpecs": []any{},
	}
}

func patchConfig(i int, p Patch) map[string]any {
	c := map[string]any{
		"apiVersion": "builtin",
		"kind":       "PatchTransformer",
		"metadata":   map[string]any{"name": fmt.Sprintf("galley-patch-%d", i)},
		"patch":      p.Patch,
	}
	if p.Target != nil {
		c["target"] = p.Target.selector()
	}
	return c
}

// imageFieldSpecs are where Kustomize's images field looks beyond the
// containers and initContainers it finds anywhere in an object: every
// place of manifest.ImageFields, the table the bundle's image index reads
// too, so an image is rewritten where it is indexed.
var imageFieldSpecs = func() []types.FieldSpec {
	out := make([]types.FieldSpec, len(manifest.ImageFields))
	for i, f := range manifest.ImageFields {
		out[i] = types.FieldSpec{Gvk: resid.Gvk{Group: f.Group, Kind: f.Kind}, Path: strings.Join(f.Path, "/")}
	}
	return out
}()

func (o Options) validate() error {
	var errs []error
	if o.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, msg))
		}
	}
	for i, p := range o.Patches {
		if strings.TrimSpace(p.Patch) == "" {
			errs = append(errs, fmt.Errorf("patch %d: empty patch", i))
		}
	}
	for _, k := range sortedKeys(o.Labels) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("label %q: key: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(o.Labels[k]) {
			errs = append(errs, fmt.Errorf("label %q: value %q: %s", k, o.Labels[k], msg))
		}
	}
	for _, k := range sortedKeys(o.Annotations) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("annotation %q: key: %s", k, msg))
		}
	}
	for i, im := range o.Images {
		switch {
		case im.Name == "":
			errs = append(errs, fmt.Errorf("image %d: name is empty", i))
		case im.NewName == "" && im.NewTag == "" && im.Digest == "":
			errs = append(errs, fmt.Errorf("image %d (%s): set newName, newTag or digest", i, im.Name))
		case im.NewTag != "" && im.Digest != "":
			errs = append(errs, fmt.Errorf("image %d (%s): newTag and digest are exclusive", i, im.Name))
		case im.Digest != "" && !strings.Contains(im.Digest, ":"):
			errs = append(errs, fmt.Errorf("image %d (%s): digest %q is not algorithm:hex", i, im.Name, im.Digest))
		}
	}
	return errors.Join(errs...)
}

// isEmptyDoc reports whether d holds no YAML node: only blank lines,
// comments and document markers.
func isEmptyDoc(d []byte) bool {
	for len(d) > 0 {
		line := d
		if i := bytes.IndexByte(d, '\n'); i >= 0 {
			line, d = d[:i], d[i+1:]
		} else {
			d = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || bytes.Equal(line, []byte("---")) || bytes.Equal(line, []byte("...")) {
			continue
		}
		return false
	}
	return true
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
