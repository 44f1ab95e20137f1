package compiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Object is one rendered Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// Source is the chart template that produced it, for error messages.
	Source string
	// Body is the object as JSON-compatible values; numbers are
	// json.Number so that large integers survive the round trip exactly.
	Body map[string]any
}

// Group is the API group of the object ("" for the core group).
func (o *Object) Group() string {
	if i := strings.LastIndex(o.APIVersion, "/"); i >= 0 {
		return o.APIVersion[:i]
	}
	return ""
}

// ID names the object for messages: Kind/namespace/name.
func (o *Object) ID() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// parseObject decodes one YAML document the way kubectl, Argo CD and Flux
// do (YAML to JSON), and refuses anything that is not a Kubernetes object:
// Flux fails on such files in an app directory.
func parseObject(doc []byte, source string) (*Object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", source, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil // an empty document
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: not a Kubernetes object (a YAML mapping is expected): %w", source, err)
	}
	o := &Object{Source: source, Body: body}
	o.APIVersion, _ = body["apiVersion"].(string)
	o.Kind, _ = body["kind"].(string)
	meta, _ := body["metadata"].(map[string]any)
	o.Name, _ = meta["name"].(string)
	o.Namespace, _ = meta["namespace"].(string)
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, fmt.Errorf("%s: not a Kubernetes object: apiVersion, kind and metadata.name are required", source)
	}
	return o, nil
}

// YAML renders the object with sorted keys, so the bytes depend only on
// the object.
func (o *Object) YAML() ([]byte, error) {
	js, err := json.Marshal(o.Body)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
	}
	return y, nil
}

// clusterScoped lists the kinds charts commonly render that have no
// namespace, so two apps writing one of them collide wherever they live.
var clusterScoped = map[string]bool{
	"APIService": true, "CSIDriver": true, "ClusterIssuer": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "CustomResourceDefinition": true, "IngressClass": true,
	"MutatingWebhookConfiguration": true, "Namespace": true, "PersistentVolume": true,
	"PodSecurityPolicy": true, "PriorityClass": true, "RuntimeClass": true, "StorageClass": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"ValidatingWebhookConfiguration": true, "VolumeSnapshotClass": true,
}

// key identifies the object in the cluster once deployed into namespace:
// what two apps must not both write.
func (o *Object) key(namespace string) string {
	ns := o.Namespace
	if clusterScoped[o.Kind] {
		ns = ""
	} else if ns == "" {
		ns = namespace
	}
	return o.Group() + "/" + o.Kind + "/" + ns + "/" + o.Name
}

var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

// fileNames gives each object a file name in its app directory:
// <kind>-<name>.yaml, made unique with the namespace and then the group
// when a chart renders two objects that would share one. The names depend
// only on the objects, in order.
func fileNames(objs []*Object) []string {
	base := func(o *Object, parts ...string) string {
		s := strings.ToLower(strings.Join(append([]string{o.Kind}, parts...), "-"))
		return strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-.")
	}
	count := map[string]int{}
	for _, o := range objs {
		count[base(o, o.Name)]++
	}
	names := make([]string, len(objs))
	used := map[string]bool{}
	for i, o := range objs {
		n := base(o, o.Name)
		if count[n] > 1 {
			n = base(o, o.Name, o.Namespace, strings.ReplaceAll(o.Group(), ".", "-"))
		}
		for k, cand := 2, n; ; k++ {
			if !used[cand] {
				n = cand
				break
			}
			cand = fmt.Sprintf("%s-%d", n, k)
		}
		used[n] = true
		names[i] = n + ".yaml"
	}
	return names
}

// podSpecPaths are where workload kinds keep their pod spec.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// Images returns the container images the object runs, sorted and unique:
// containers, init containers and ephemeral containers of workloads, and
// the image fields of the prometheus-operator CRDs galley's stacks use.
func (o *Object) Images() []string {
	set := map[string]bool{}
	if path, ok := podSpecPaths[o.Kind]; ok {
		spec, _ := lookup(o.Body, path...).(map[string]any)
		for _, field := range []string{"containers", "initContainers", "ephemeralContainers"} {
			list, _ := spec[field].([]any)
			for _, c := range list {
				cm, _ := c.(map[string]any)
				if img, _ := cm["image"].(string); img != "" {
					set[img] = true
				}
			}
		}
	}
	if o.Group() == "monitoring.coreos.com" {
		switch o.Kind {
		case "Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent":
			if img, _ := lookup(o.Body, "spec", "image").(string); img != "" {
				set[img] = true
			}
		}
	}
	return sortedKeys(set)
}

func lookup(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// firstDiff returns the path of the first difference between a and b, in
// sorted key order, and whether there is one.
func firstDiff(a, b any, path string) (string, bool) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path, true
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if p, ok := firstDiff(av[k], bv[k], joinPath(path, k)); ok {
				return p, true
			}
		}
		return "", false
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return path, true
		}
		for i := range av {
			if p, ok := firstDiff(av[i], bv[i], fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
		return "", false
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return path, true
		}
		return "", false
	}
}

func joinPath(path, key string) string {
	if strings.ContainsAny(key, ".[]") {
		key = fmt.Sprintf("[%q]", key)
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
