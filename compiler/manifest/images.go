package manifest

import (
	"sort"
	"strings"
)

// PodSpecs are where workload kinds keep their pod spec.
var PodSpecs = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// podSpecImages are where a pod spec names images: its containers of
// every sort, and image volumes (Kubernetes 1.31+).
var podSpecImages = [][]string{
	{"containers[]", "image"},
	{"initContainers[]", "image"},
	{"ephemeralContainers[]", "image"},
	{"volumes[]", "image", "reference"},
}

// ImageField is one place where objects of a kind name an image.
type ImageField struct {
	// Group and Kind select the objects; an empty Group matches every
	// group (the workload kinds are not reused by well-known CRDs).
	Group, Kind string
	// Path leads from the object to the image; a step ending in "[]" is
	// a list, each of whose items the rest of the path is followed in.
	// Kustomize's field specs spell it the same way, joined by "/".
	Path []string
}

// ImageFields is where galley knows objects name images: the pod spec of
// every workload kind, and the image fields of the prometheus-operator
// CRDs galley's stacks use. It is the one table both the rewrite of an
// app's `images` (compiler/kustomize) and the bundle's image index
// (Images) read, so that an image is rewritten exactly where it is
// indexed.
var ImageFields = imageFields()

func imageFields() []ImageField {
	kinds := make([]string, 0, len(PodSpecs))
	for k := range PodSpecs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var out []ImageField
	for _, k := range kinds {
		for _, p := range podSpecImages {
			out = append(out, ImageField{Kind: k, Path: append(append([]string{}, PodSpecs[k]...), p...)})
		}
	}
	// Kustomize also rewrites containers and initContainers wherever it
	// finds them, so the operator's extra containers are listed too.
	for _, k := range []string{"Alertmanager", "Prometheus", "PrometheusAgent", "ThanosRuler"} {
		for _, p := range [][]string{{"spec", "image"}, {"spec", "containers[]", "image"}, {"spec", "initContainers[]", "image"}} {
			out = append(out, ImageField{Group: "monitoring.coreos.com", Kind: k, Path: p})
		}
	}
	return out
}

// selects reports whether the field is one of o's.
func (f ImageField) selects(o *Object) bool {
	return f.Kind == o.Kind && (f.Group == "" || f.Group == o.Group())
}

// Images returns the images the object names, sorted and unique, at the
// places ImageFields lists.
func (o *Object) Images() []string {
	if o.fromCache {
		return o.images
	}
	set := map[string]bool{}
	for _, f := range ImageFields {
		if f.selects(o) {
			collectImages(o.Body, f.Path, set)
		}
	}
	return SortedKeys(set)
}

func collectImages(v any, path []string, set map[string]bool) {
	if len(path) == 0 {
		if s, _ := v.(string); s != "" {
			set[s] = true
		}
		return
	}
	m, _ := v.(map[string]any)
	step, list := strings.CutSuffix(path[0], "[]")
	if !list {
		collectImages(m[step], path[1:], set)
		return
	}
	items, _ := m[step].([]any)
	for _, it := range items {
		collectImages(it, path[1:], set)
	}
}

// SortedKeys returns the keys of set, sorted.
func SortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
