// Package statussim is a STATUS SIMULATOR for test clusters that have no
// kubelet, scheduler or controller manager (internal/testcluster): it
// writes the status that those components would write once a workload
// runs, so that Flux's health checks and Argo CD's health assessment, which
// read only status, see workloads as ready or complete.
//
// It is a simulation, and tests that use it say so: no container runs, no
// image is pulled, no probe is checked. A Deployment is "available" with
// all its replicas, a StatefulSet and a DaemonSet "ready", a Job "complete"
// with all its completions, a bare Pod "running and ready" (or "succeeded"
// when it does not restart, as hook Pods), a PersistentVolumeClaim "bound",
// and a LoadBalancer Service or an Ingress gets the address 127.0.0.1.
// What a real cluster would still do differently: pull every image (and
// fail on a wrong one), run init containers and migrations in order, fail
// readiness probes, schedule against resources and node selectors, create
// Pods from ReplicaSets, Jobs from CronJobs, and garbage-collect dependents.
//
// It also stands in for one part of the garbage collector: an object
// deleted with foreground (or orphan) propagation keeps its
// foregroundDeletion (orphan) finalizer until the garbage collector has
// dealt with its dependents, and Argo CD deletes hooks that way. Nothing
// here creates dependents, so the simulator removes those two finalizers
// from objects being deleted, as the garbage collector would once it found
// none.
package statussim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// kind is one kind the simulator marks: done says the object already looks
// as the simulator makes it, status returns the status to merge in.
type kind struct {
	gvr    schema.GroupVersionResource
	done   func(obj map[string]any) bool
	status func(obj map[string]any, now string) map[string]any
}

var kinds = []kind{
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, deploymentDone, deploymentStatus},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, statefulSetDone, statefulSetStatus},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, daemonSetDone, daemonSetStatus},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, jobDone, jobStatus},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, podDone, podStatus},
	{schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, pvcDone, pvcStatus},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, serviceDone, loadBalancerStatus},
	{schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, ingressDone, loadBalancerStatus},
	// What the Prometheus operator writes once its StatefulSets run; Argo CD
	// reads these conditions for the health of the two kinds. Only where
	// the cluster has their CRDs (listing them otherwise is not found).
	{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheuses"}, operatorDone, operatorStatus},
	{schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "alertmanagers"}, operatorDone, operatorStatus},
}

// Simulator marks workloads of one cluster.
type Simulator struct {
	client    dynamic.Interface
	discovery discovery.DiscoveryInterface
	// lastCollect throttles collect, which lists every kind of object.
	lastCollect time.Time
	// Marked counts the status writes, for tests of the simulator.
	Marked int
}

// New returns a simulator for the cluster cfg points at.
func New(cfg *rest.Config) (*Simulator, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("status simulator: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("status simulator: %w", err)
	}
	return &Simulator{client: client, discovery: disc}, nil
}

// Run marks workloads every interval until ctx is done. It returns nil
// when ctx is cancelled and an error when the API server refuses a status
// write, which means the simulator is out of date with the server.
func (s *Simulator) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once marks every workload that is not marked yet.
func (s *Simulator) Once(ctx context.Context) error {
	now := time.Now().UTC().Format(time.RFC3339)
	var errs []error
	for _, k := range kinds {
		list, err := s.client.Resource(k.gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) && k.gvr.Group == "monitoring.coreos.com" {
			continue // no Prometheus operator CRDs in this cluster
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", k.gvr.Resource, err))
			continue
		}
		for _, item := range list.Items {
			if item.GetDeletionTimestamp() != nil || k.done(item.Object) {
				continue
			}
			st := k.status(item.Object, now)
			if st == nil {
				continue
			}
			patch, err := json.Marshal(map[string]any{"status": st})
			if err != nil {
				return err
			}
			_, err = s.client.Resource(k.gvr).Namespace(item.GetNamespace()).
				Patch(ctx, item.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "galley-statussim"}, "status")
			if err != nil {
				errs = append(errs, fmt.Errorf("marking %s %s/%s: %w", k.gvr.Resource, item.GetNamespace(), item.GetName(), err))
				continue
			}
			s.Marked++
		}
	}
	if time.Since(s.lastCollect) >= 2*time.Second {
		s.lastCollect = time.Now()
		errs = append(errs, s.collect(ctx))
	}
	return errors.Join(errs...)
}

// gcFinalizers are the finalizers the garbage collector removes once it
// has dealt with an object's dependents.
var gcFinalizers = map[string]bool{metav1.FinalizerDeleteDependents: true, metav1.FinalizerOrphanDependents: true}

// collect removes the garbage collector's finalizers from every object
// being deleted (see the package comment).
func (s *Simulator) collect(ctx context.Context) error {
	lists, err := s.discovery.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return fmt.Errorf("discovering resources: %w", err)
	}
	var errs []error
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !hasVerbs(r.Verbs, "list", "patch") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			items, err := s.client.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue // an aggregated API that does not answer: not ours
			}
			for _, item := range items.Items {
				if item.GetDeletionTimestamp() == nil {
					continue
				}
				var keep []string
				for _, f := range item.GetFinalizers() {
					if !gcFinalizers[f] {
						keep = append(keep, f)
					}
				}
				if len(keep) == len(item.GetFinalizers()) {
					continue
				}
				patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
					"finalizers": keep, "resourceVersion": item.GetResourceVersion(),
				}})
				if err != nil {
					return err
				}
				var ri dynamic.ResourceInterface = s.client.Resource(gvr)
				if r.Namespaced {
					ri = s.client.Resource(gvr).Namespace(item.GetNamespace())
				}
				if _, err := ri.Patch(ctx, item.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					errs = append(errs, fmt.Errorf("collecting %s %s/%s: %w", r.Name, item.GetNamespace(), item.GetName(), err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func hasVerbs(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func replicas(obj map[string]any) int64 {
	r, found, err := unstructured.NestedFieldNoCopy(obj, "spec", "replicas")
	if !found || err != nil {
		return 1
	}
	switch v := r.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 1
}

func num(obj map[string]any, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

func str(obj map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedString(obj, path...)
	return v
}

func generation(obj map[string]any) int64 { return num(obj, "metadata", "generation") }

func observed(obj map[string]any) bool {
	return num(obj, "status", "observedGeneration") == generation(obj)
}

func deploymentDone(obj map[string]any) bool {
	return observed(obj) && num(obj, "status", "availableReplicas") == replicas(obj) && num(obj, "status", "updatedReplicas") == replicas(obj)
}

func deploymentStatus(obj map[string]any, now string) map[string]any {
	r := replicas(obj)
	return map[string]any{
		"observedGeneration": generation(obj),
		"replicas":           r, "updatedReplicas": r, "readyReplicas": r, "availableReplicas": r,
		// Progressing's reason is what kstatus (Flux) and Argo CD read as
		// "rollout finished".
		"conditions": []any{
			cond("Available", "MinimumReplicasAvailable", now),
			cond("Progressing", "NewReplicaSetAvailable", now),
		},
	}
}

func statefulSetDone(obj map[string]any) bool {
	return observed(obj) && num(obj, "status", "readyReplicas") == replicas(obj) && num(obj, "status", "updatedReplicas") == replicas(obj)
}

func statefulSetStatus(obj map[string]any, _ string) map[string]any {
	r := replicas(obj)
	rev := fmt.Sprintf("%s-sim%d", str(obj, "metadata", "name"), generation(obj))
	return map[string]any{
		"observedGeneration": generation(obj),
		"replicas":           r, "readyReplicas": r, "currentReplicas": r, "updatedReplicas": r, "availableReplicas": r,
		"currentRevision": rev, "updateRevision": rev,
	}
}

func daemonSetDone(obj map[string]any) bool {
	return observed(obj) && num(obj, "status", "numberReady") == 1
}

// daemonSetStatus says the DaemonSet runs on the one simulated node.
func daemonSetStatus(obj map[string]any, _ string) map[string]any {
	return map[string]any{
		"observedGeneration":     generation(obj),
		"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "updatedNumberScheduled": 1,
		"numberReady": 1, "numberAvailable": 1, "numberMisscheduled": 0,
	}
}

func jobDone(obj map[string]any) bool {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if (m["type"] == "Complete" || m["type"] == "Failed") && m["status"] == "True" {
			return true
		}
	}
	return false
}

func jobStatus(obj map[string]any, now string) map[string]any {
	completions := num(obj, "spec", "completions")
	if completions < 1 {
		completions = 1
	}
	start := str(obj, "status", "startTime")
	if start == "" {
		start = now
	}
	return map[string]any{
		"startTime":      start,
		"completionTime": now,
		"succeeded":      completions,
		"active":         0,
		"ready":          0,
		"conditions": []any{
			cond("SuccessCriteriaMet", "CompletionsReached", now),
			cond("Complete", "CompletionsReached", now),
		},
	}
}

func podDone(obj map[string]any) bool {
	p := str(obj, "status", "phase")
	return p == "Running" || p == "Succeeded" || p == "Failed"
}

// podStatus: a Pod that never restarts (a hook, a one-off task) has run to
// completion; any other is running and ready.
func podStatus(obj map[string]any, now string) map[string]any {
	containers, _, _ := unstructured.NestedSlice(obj, "spec", "containers")
	succeeded := str(obj, "spec", "restartPolicy") == "Never"
	var statuses []any
	for _, c := range containers {
		m, _ := c.(map[string]any)
		st := map[string]any{"name": m["name"], "image": m["image"], "imageID": "", "restartCount": 0, "ready": !succeeded, "started": !succeeded}
		if succeeded {
			st["state"] = map[string]any{"terminated": map[string]any{"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
		} else {
			st["state"] = map[string]any{"running": map[string]any{"startedAt": now}}
		}
		statuses = append(statuses, st)
	}
	phase, ready := "Running", "True"
	if succeeded {
		phase, ready = "Succeeded", "False"
	}
	return map[string]any{
		"phase":             phase,
		"startTime":         now,
		"containerStatuses": statuses,
		"conditions": []any{
			map[string]any{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
			map[string]any{"type": "Initialized", "status": "True", "lastTransitionTime": now},
			map[string]any{"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
			map[string]any{"type": "Ready", "status": ready, "lastTransitionTime": now},
		},
	}
}

func pvcDone(obj map[string]any) bool { return str(obj, "status", "phase") == "Bound" }

func pvcStatus(obj map[string]any, _ string) map[string]any {
	st := map[string]any{"phase": "Bound"}
	if req, found, _ := unstructured.NestedMap(obj, "spec", "resources", "requests"); found {
		st["accessModes"], _, _ = unstructured.NestedSlice(obj, "spec", "accessModes")
		st["capacity"] = req
	}
	return st
}

func serviceDone(obj map[string]any) bool {
	if str(obj, "spec", "type") != "LoadBalancer" {
		return true
	}
	return ingressDone(obj)
}

func ingressDone(obj map[string]any) bool {
	ing, _, _ := unstructured.NestedSlice(obj, "status", "loadBalancer", "ingress")
	return len(ing) > 0
}

func loadBalancerStatus(map[string]any, string) map[string]any {
	return map[string]any{"loadBalancer": map[string]any{"ingress": []any{map[string]any{"ip": "127.0.0.1"}}}}
}

func operatorDone(obj map[string]any) bool {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Available" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func operatorStatus(obj map[string]any, now string) map[string]any {
	return map[string]any{
		"availableReplicas": replicas(obj), "replicas": replicas(obj), "updatedReplicas": replicas(obj),
		"conditions": []any{cond("Available", "SimulatedRunning", now), cond("Reconciled", "SimulatedRunning", now)},
	}
}

func cond(typ, reason, now string) map[string]any {
	return map[string]any{"type": typ, "status": "True", "reason": reason, "message": "marked by galley's status simulator", "lastTransitionTime": now}
}
