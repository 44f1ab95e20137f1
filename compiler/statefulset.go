package compiler

import "github.com/galley-dev/galley/compiler/manifest"

// typeClaimTemplates gives every volumeClaimTemplate of an apps/v1
// StatefulSet the apiVersion and kind the API server stores on it.
//
// The API server converts each write to its internal version and back, and
// that conversion sets `apiVersion: v1` and `kind: PersistentVolumeClaim`
// on every template (kubernetes/kubernetes#87583, kept for compatibility
// with < 1.17). Argo CD compares an app synced with ServerSideApply=true by
// replaying the apply on the live object (gitops-engine's structured merge
// diff): the template list is atomic, so the predicted object holds the
// templates as rendered, the live one holds them typed, and the
// StatefulSet stays OutOfSync after every successful sync
// (argoproj/argo-cd#11143). Scheme defaults (volumeMode, status.phase)
// are filled in on both sides by the diff itself; apiVersion and kind are
// not. Writing them here makes the rendered object what the cluster holds,
// which no engine or kubectl treats differently.
func typeClaimTemplates(o *Object) {
	if o.Kind != "StatefulSet" || o.APIVersion != "apps/v1" {
		return
	}
	templates, _ := manifest.Lookup(o.Body, "spec", "volumeClaimTemplates").([]any)
	for _, t := range templates {
		m, ok := t.(map[string]any)
		if !ok {
			continue
		}
		if _, ok := m["apiVersion"]; !ok {
			m["apiVersion"] = "v1"
		}
		if _, ok := m["kind"]; !ok {
			m["kind"] = "PersistentVolumeClaim"
		}
	}
}
