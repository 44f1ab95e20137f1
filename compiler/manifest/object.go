// Package manifest is galley's model of a rendered Kubernetes object and
// its codec: reading a YAML document the way kubectl, Argo CD and Flux do,
// printing it byte for byte as sigs.k8s.io/yaml would, naming its file in
// the bundle, and finding the images it runs.
package manifest

import (
	"strings"
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

	// yaml, once printed (Print), is the object's file; for an object
	// read back from a cache (FromCache), Body is nil and yaml and
	// images are all there is.
	yaml      []byte
	images    []string
	fromCache bool
}

// FromCache returns an object known by its identity (the first fields of
// id), its printed YAML and its images alone, as a cache stores it: Body
// is nil, and YAML and Images answer from what is given.
func FromCache(id Object, yaml []byte, images []string) *Object {
	return &Object{
		APIVersion: id.APIVersion, Kind: id.Kind, Namespace: id.Namespace, Name: id.Name, Source: id.Source,
		yaml: yaml, images: images, fromCache: true,
	}
}

// Cached reports whether the object was read back from a cache (FromCache)
// and so has no Body.
func (o *Object) Cached() bool { return o.fromCache }

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

// ClusterScoped lists the cluster-scoped kinds of Kubernetes (v1.37), and
// common ones of well-known CRDs, which have no namespace: two apps writing
// one of them collide wherever they live. The AppProject's whitelist takes
// only the built-in ones from here.
var ClusterScoped = map[string]bool{
	"APIService": true, "CSIDriver": true, "CSINode": true, "CertificateSigningRequest": true,
	"ClusterIssuer": true, "ClusterRole": true, "ClusterRoleBinding": true, "ClusterTrustBundle": true,
	"ComponentStatus": true, "CustomResourceDefinition": true, "DeviceClass": true, "DeviceTaintRule": true,
	"FlowSchema": true, "IPAddress": true, "IngressClass": true,
	"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true,
	"MutatingWebhookConfiguration": true, "Namespace": true, "Node": true, "PersistentVolume": true,
	"PodSecurityPolicy": true, "PriorityClass": true, "PriorityLevelConfiguration": true,
	"ResourceSlice": true, "RuntimeClass": true, "ServiceCIDR": true, "StorageClass": true,
	"StorageVersionMigration": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"ValidatingWebhookConfiguration": true, "VolumeAttachment": true, "VolumeAttributesClass": true,
	"VolumeSnapshotClass": true,
}

// Key identifies the object in the cluster once deployed into namespace:
// what two apps must not both write.
func (o *Object) Key(namespace string) string {
	ns := o.Namespace
	if ClusterScoped[o.Kind] {
		ns = ""
	} else if ns == "" {
		ns = namespace
	}
	return o.Group() + "/" + o.Kind + "/" + ns + "/" + o.Name
}

// Lookup follows path through nested maps; nil when a step is missing or
// not a map.
func Lookup(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
