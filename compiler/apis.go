package compiler

import (
	"bufio"
	"bytes"

	"fmt"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// crdFacts is what galley needs to know of a CustomResourceDefinition: the
// kind it defines, in which versions, and whether its objects are
// namespaced. Cached apps keep it beside each CRD, whose body they drop.
type crdFacts struct {
	Group    string   `json:"group"`
	Kind     string   `json:"kind"`
	Versions []string `json:"versions"`
	Cluster  bool     `json:"cluster,omitempty"`
}

func (o *Object) isCRD() bool {
	return o.Kind == "CustomResourceDefinition" && o.Group() == "apiextensions.k8s.io"
}

// crdFacts returns the facts of a CustomResourceDefinition, nil for any other
// object (or a CRD too malformed to define anything).
func (o *Object) crdFacts() *crdFacts {
	if !o.isCRD() {
		return nil
	}
	if o.Cached() {
		return o.crd
	}
	spec, _ := o.Body["spec"].(map[string]any)
	f := &crdFacts{}
	f.Group, _ = spec["group"].(string)
	f.Kind, _ = manifest.Lookup(spec, "names", "kind").(string)
	scope, _ := spec["scope"].(string)
	f.Cluster = scope == "Cluster"
	versions, _ := spec["versions"].([]any)
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		name, _ := vm["name"].(string)
		if served, ok := vm["served"].(bool); name != "" && (served || !ok) {
			f.Versions = append(f.Versions, name)
		}
	}
	if f.Group == "" || f.Kind == "" {
		return nil
	}
	slices.Sort(f.Versions)
	return f
}

// builtinGroupKinds are kinds the API server serves itself that client-go's
// scheme does not register.
var builtinGroupKinds = map[schema.GroupVersionKind]bool{
	{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}: true,
	{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}:             true,
}

// builtin reports whether Kubernetes itself serves apiVersion/kind.
func builtin(apiVersion, kind string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return false
	}
	gvk := gv.WithKind(kind)
	return builtinGroupKinds[gvk] || scheme.Scheme.Recognizes(gvk)
}

// apiProvider says, for an object's API, where it comes from: Kubernetes,
// the cluster (kubernetes.apiVersions), or the CRD of one of the bundle's
// apps.
type apiProvider struct {
	crds     map[string]string // group/version/Kind -> app with its CRD
	cluster  map[string]bool   // group/version and group/version/Kind
	clusterK map[string]bool   // group/Kind of cluster-scoped CRDs
}

func newAPIProvider(s *stack.Stack, apps []*renderedApp) *apiProvider {
	p := &apiProvider{crds: map[string]string{}, cluster: map[string]bool{}, clusterK: map[string]bool{}}
	for _, v := range s.Kubernetes.APIVersions {
		p.cluster[v] = true
	}
	for _, r := range apps {
		for _, o := range r.objects {
			f := o.crdFacts()
			if f == nil {
				continue
			}
			for _, v := range f.Versions {
				p.crds[f.Group+"/"+v+"/"+f.Kind] = r.app.Name
			}
			if f.Cluster {
				p.clusterK[f.Group+"/"+f.Kind] = true
			}
		}
	}
	return p
}

// provided returns who provides the object's API: the app whose CRD
// defines it, or "" for Kubernetes or the cluster; ok is false for nobody.
// A CRD of the bundle counts even when kubernetes.apiVersions declares the
// API too (charts test for it with .Capabilities.APIVersions.Has): the
// object must come after it.
func (p *apiProvider) provided(o *Object) (app string, ok bool) {
	group, version := o.Group(), o.APIVersion
	if i := strings.LastIndex(version, "/"); i >= 0 {
		version = version[i+1:]
	}
	if app, ok := p.crds[group+"/"+version+"/"+o.Kind]; ok {
		return app, true
	}
	if builtin(o.APIVersion, o.Kind) || p.cluster[o.APIVersion] || p.cluster[o.APIVersion+"/"+o.Kind] {
		return "", true
	}
	return "", false
}

// clusterScopedKind reports whether objects of kind are cluster-scoped, as
// far as galley can tell: built-in kinds it lists, and the bundle's CRDs.
func (p *apiProvider) clusterScopedKind(o *Object) bool {
	return manifest.ClusterScoped[o.Kind] && builtin(o.APIVersion, o.Kind) || p.clusterK[o.Group()+"/"+o.Kind]
}

// missingAPI is the message for an object whose API nobody provides.
func missingAPI(o *Object) string {
	return fmt.Sprintf("%s (from %s) is a %s of API %s, which neither Kubernetes, a CRD of the bundle, nor kubernetes.apiVersions provides: "+
		"install the chart's CRDs (crds: true), add an app that installs them, or declare the API the cluster has in kubernetes.apiVersions (%q)",
		o.ID(), o.Source, o.Kind, o.APIVersion, o.APIVersion)
}

// checkAPIs refuses an object whose API nobody provides: the sync would
// fail on it. A custom resource whose CRD another app installs must come
// after that app: in a later Argo CD wave, and depending on it for Flux.
// monitoring holds the objects of monitoring/, which Argo CD syncs in its
// own wave and Flux after every app.
func checkAPIs(s *stack.Stack, p *apiProvider, apps []*renderedApp, monitoring []*Object, waves map[string]int) error {
	var errs stack.Errors
	deps := dependencyClosure(s)
	for _, r := range apps {
		var missing []string
		for _, o := range r.objects {
			from, ok := p.provided(o)
			switch {
			case !ok:
				missing = append(missing, o.APIVersion+" "+o.Kind)
				if len(missing) == 1 {
					errs = append(errs, appError(r.app, "", "app %s: %s", r.app.Name, missingAPI(o)))
				}
			case from == "" || from == r.app.Name:
			case s.Delivery.ArgoCD != nil && waves[r.app.Name] <= waves[from]:
				errs = append(errs, appError(r.app, "", "app %s: %s (from %s) needs the CRD of %s %s, which app %s installs in Argo CD wave %d, not before this app's wave %d: add %s to dependsOn (or fix syncWave)",
					r.app.Name, o.ID(), o.Source, o.APIVersion, o.Kind, from, waves[from], waves[r.app.Name], from))
			case s.Delivery.Flux != nil && !deps[r.app.Name][from]:
				errs = append(errs, appError(r.app, "dependsOn", "app %s: %s (from %s) needs the CRD of %s %s, which app %s installs: add %s to dependsOn, so that Flux applies it first",
					r.app.Name, o.ID(), o.Source, o.APIVersion, o.Kind, from, from))
			}
		}
		if len(missing) > 1 {
			slices.Sort(missing)
			missing = slices.Compact(missing)
			if len(missing) > 1 {
				errs[len(errs)-1].Msg += fmt.Sprintf("\n    the app has objects of %d such APIs: %s", len(missing), strings.Join(missing, ", "))
			}
		}
	}
	var unserved []*Object
	for _, o := range monitoring {
		from, ok := p.provided(o)
		switch {
		case !ok:
			unserved = append(unserved, o)
		case from != "" && s.Delivery.ArgoCD != nil && s.Monitoring.SyncWave != nil && *s.Monitoring.SyncWave <= waves[from]:
			errs = append(errs, s.MonitoringError("syncWave", "monitoring: %s needs the CRD of %s %s, which app %s installs in Argo CD wave %d: set syncWave above it, or leave it unset (after every app)",
				o.ID(), o.APIVersion, o.Kind, from, waves[from]))
		}
	}
	if len(unserved) > 0 {
		var objs, apis []string
		for _, o := range unserved {
			objs = append(objs, o.ID()+" ("+o.APIVersion+")")
			apis = append(apis, fmt.Sprintf("%q", o.APIVersion))
		}
		slices.Sort(apis)
		apis = slices.Compact(apis)
		errs = append(errs, s.MonitoringError("", "monitoring/ has objects whose API neither Kubernetes, a CRD of the bundle, nor kubernetes.apiVersions provides:\n        %s\n"+
			"    the Prometheus operator serves them: add an app that installs its CRDs (kube-prometheus-stack, prometheus-operator-crds), or, if the cluster has them, declare kubernetes: apiVersions: [%s]",
			strings.Join(objs, "\n        "), strings.Join(apis, ", ")))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// dependencyClosure maps each app and job to every app and job it depends
// on, directly or not.
func dependencyClosure(s *stack.Stack) map[string]map[string]bool {
	direct := map[string][]string{}
	for _, a := range s.Apps {
		direct[a.Name] = a.DependsOn
	}
	for _, j := range s.Jobs {
		direct[j.Name] = j.DependsOn
	}
	out := map[string]map[string]bool{}
	var visit func(n string, into map[string]bool)
	visit = func(n string, into map[string]bool) {
		for _, d := range direct[n] {
			if !into[d] {
				into[d] = true
				visit(d, into)
			}
		}
	}
	for n := range direct {
		into := map[string]bool{}
		visit(n, into)
		out[n] = into
	}
	return out
}

// splitDocuments splits a multi-document YAML file as kubectl does.
func splitDocuments(b []byte) [][]byte {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out [][]byte
	for {
		doc, err := rd.Read()
		if err != nil { // io.EOF; a bytes.Reader has no other error
			return out
		}
		out = append(out, doc)
	}
}
