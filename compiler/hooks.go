package compiler

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/galley-dev/galley/compiler/flux"
	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// Annotations the delivery engines read.
const (
	helmHookKey          = "helm.sh/hook"
	helmHookWeightKey    = "helm.sh/hook-weight"
	helmHookDeleteKey    = "helm.sh/hook-delete-policy"
	argoHookKey          = "argocd.argoproj.io/hook"
	argoHookDeleteKey    = "argocd.argoproj.io/hook-delete-policy"
	argoWaveKey          = "argocd.argoproj.io/sync-wave"
	fluxForceKey         = "kustomize.toolkit.fluxcd.io/force"
	argoBeforeHookCreate = "BeforeHookCreation"
)

// deliveryMarks says what galley writes on an app's objects for the
// engines that deploy it. It is part of the app cache key: the marks are
// in the cached objects.
type deliveryMarks struct {
	ArgoCD bool `json:"argocd,omitempty"`
	Flux   bool `json:"flux,omitempty"`
	// PreInstall and PostInstall are the Argo CD phases of the hooks of
	// those Helm events (and of pre- and post-upgrade).
	PreInstall  string `json:"preInstall,omitempty"`
	PostInstall string `json:"postInstall,omitempty"`
	// Objects are phases for single hooks, by Kind/name.
	Objects map[string]string `json:"objects,omitempty"`
}

func marksFor(s *stack.Stack, a *stack.App) deliveryMarks {
	h := a.Hooks.ArgoCD
	return deliveryMarks{
		ArgoCD:      s.Delivery.ArgoCD != nil,
		Flux:        s.Delivery.Flux != nil,
		PreInstall:  h.PreInstall,
		PostInstall: h.PostInstall,
		Objects:     h.Objects,
	}
}

// hookEvents are the Helm events of a hook, "" for an object that is none.
func hookEvents(o *Object) []string {
	v, _ := annotations(o)[helmHookKey].(string)
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func annotations(o *Object) map[string]any {
	m, _ := manifest.Lookup(o.Body, "metadata", "annotations").(map[string]any)
	return m
}

func setAnnotation(o *Object, k, v string) {
	meta, _ := o.Body["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		o.Body["metadata"] = meta
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	ann[k] = v
}

// intAnnotation reads an integer annotation (a wave, a weight).
func intAnnotation(o *Object, k string) (int, bool) {
	v, ok := annotations(o)[k].(string)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}

// markObjects writes on an app's objects what the delivery engines need to
// deploy a Helm chart as Helm would (docs/argocd.md, docs/flux.md):
//
// Argo CD: the chart's CRDs get a wave before every other object, so that
// they are established before any custom resource. Post-install and
// post-upgrade hooks run in the Sync phase by default, with the app's
// objects (in the lowest wave, then one wave per later hook weight),
// since the app's workloads often wait for them (Airflow's scheduler waits
// for its migrations): Argo CD's own mapping to PostSync would wait for
// those workloads first, forever. Pre-install and pre-upgrade hooks stay
// PreSync. Every hook is recreated on each sync (BeforeHookCreation),
// which is Helm's default and keeps immutable Job specs from failing.
//
// Flux: pre-install and pre-upgrade hooks are marked (flux.HookPhaseKey)
// for a Kustomization of their own, which the app's waits for; hook Jobs
// and Pods carry kustomize.toolkit.fluxcd.io/force, so a changed spec
// replaces them instead of failing on immutable fields.
//
// For Argo CD too, StatefulSets' volumeClaimTemplates are typed as the API
// server stores them (typeClaimTemplates), or they would never look Synced.
func markObjects(a *stack.App, m deliveryMarks, objs []*Object) *stack.Error {
	if m.ArgoCD {
		if err := markArgoCD(a, m, objs); err != nil {
			return err
		}
		for _, o := range objs {
			typeClaimTemplates(o)
		}
	}
	if m.Flux {
		for _, o := range objs {
			events := hookEvents(o)
			if len(events) == 0 {
				continue
			}
			if slices.Contains(events, "pre-install") || slices.Contains(events, "pre-upgrade") {
				setAnnotation(o, flux.HookPhaseKey, flux.HookPhasePre)
				o.preHook = true
			}
			if !immutableWorkload(o) {
				continue
			}
			if _, ok := annotations(o)[fluxForceKey]; !ok {
				setAnnotation(o, fluxForceKey, "enabled")
			}
		}
	}
	return nil
}

// immutableWorkload reports whether the object is a Job or a Pod, whose
// specs an update may not change.
func immutableWorkload(o *Object) bool {
	return o.Kind == "Job" && o.Group() == "batch" || o.Kind == "Pod" && o.Group() == ""
}

func markArgoCD(a *stack.App, m deliveryMarks, objs []*Object) *stack.Error {
	// The wave of the app's plain objects: Argo CD's default 0, or the
	// lowest a chart set.
	base, seen := 0, false
	for _, o := range objs {
		if len(hookEvents(o)) > 0 || o.isCRD() {
			continue
		}
		if w, ok := intAnnotation(o, argoWaveKey); ok && (!seen || w < base) {
			base, seen = w, true
		}
	}
	if !seen {
		base = 0
	}

	type hook struct {
		o      *Object
		phase  string
		pre    bool
		weight int
	}
	var hooks []hook
	used := map[string]bool{}
	for _, o := range objs {
		events := hookEvents(o)
		if len(events) == 0 {
			continue
		}
		key := o.Kind + "/" + o.Name
		pre := slices.Contains(events, "pre-install") || slices.Contains(events, "pre-upgrade")
		post := slices.Contains(events, "post-install") || slices.Contains(events, "post-upgrade")
		phase, override := m.Objects[key]
		used[key] = used[key] || override
		switch {
		case override:
		case pre:
			phase = m.PreInstall
		case post:
			phase = m.PostInstall
		default:
			continue // delete, rollback and test hooks: Argo CD has no such phases
		}
		if _, ok := annotations(o)[argoHookKey]; ok && !override {
			continue // the chart says what Argo CD should do
		}
		w, _ := intAnnotation(o, helmHookWeightKey)
		hooks = append(hooks, hook{o: o, phase: phase, pre: pre, weight: w})
	}
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(m.Objects)) {
		if !used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		var names []string
		for _, o := range objs {
			if len(hookEvents(o)) > 0 {
				names = append(names, o.Kind+"/"+o.Name)
			}
		}
		slices.Sort(names)
		have := "the chart has no Helm hooks"
		if len(names) > 0 {
			have = "its hooks are " + strings.Join(names, ", ")
		}
		return appError(a, "hooks.argocd.objects", "%s: no such Helm hook in the chart; %s",
			strings.Join(unknown, ", "), have)
	}

	// Hooks moved into the Sync phase keep Helm's order among themselves
	// through waves: pre-install ones before the app's objects, one wave
	// per weight, and post-install ones from the objects' wave on.
	var preWeights, postWeights []int
	for _, h := range hooks {
		if h.phase == "Sync" {
			if h.pre {
				preWeights = append(preWeights, h.weight)
			} else {
				postWeights = append(postWeights, h.weight)
			}
		}
	}
	slices.Sort(preWeights)
	preWeights = slices.Compact(preWeights)
	slices.Sort(postWeights)
	postWeights = slices.Compact(postWeights)
	lowest := base
	for _, h := range hooks {
		setAnnotation(h.o, argoHookKey, h.phase)
		setAnnotation(h.o, argoHookDeleteKey, argoDeletePolicy(h.o))
		if h.phase != "Sync" {
			continue // Argo CD orders PreSync and PostSync hooks by their Helm weight
		}
		var wave int
		if h.pre {
			wave = base - len(preWeights) + slices.Index(preWeights, h.weight)
		} else {
			wave = base + slices.Index(postWeights, h.weight)
		}
		lowest = min(lowest, wave)
		setAnnotation(h.o, argoWaveKey, strconv.Itoa(wave))
	}
	for _, o := range objs {
		if o.isCRD() && len(hookEvents(o)) == 0 {
			if _, ok := annotations(o)[argoWaveKey]; !ok {
				setAnnotation(o, argoWaveKey, strconv.Itoa(lowest-1))
			}
		}
	}
	return nil
}

// argoDeletePolicy maps a hook's Helm delete policies to Argo CD's, always
// with BeforeHookCreation: Helm's default, and what lets a hook whose spec
// changed be created again.
func argoDeletePolicy(o *Object) string {
	policies := []string{argoBeforeHookCreate}
	v, _ := annotations(o)[helmHookDeleteKey].(string)
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "hook-succeeded":
			policies = append(policies, "HookSucceeded")
		case "hook-failed":
			policies = append(policies, "HookFailed")
		}
	}
	return strings.Join(policies, ",")
}
