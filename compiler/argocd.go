package compiler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/argocd"
	"github.com/galley-dev/galley/compiler/stack"
)

// addArgoCD writes argocd/ for a stack delivered with Argo CD: an
// Application for each app, each job and monitoring/, in the waves of the
// stack's dependencies, and the AppProject and root Application the user
// applies once (compiler/argocd).
func addArgoCD(tree *bundles.Tree, s *stack.Stack, apps []*renderedApp, waves map[string]int, apis *apiProvider) error {
	a := s.Delivery.ArgoCD
	if a == nil {
		return nil
	}
	opts := argocd.Options{
		StackName:         s.Name,
		Environment:       s.Environment,
		Version:           s.Version,
		RepoURL:           a.Repository,
		TargetRevision:    a.TargetRevision,
		Namespace:         a.Namespace,
		Project:           a.Project,
		DestinationServer: a.Server,
		Automated:         a.Sync.Automated,
		Prune:             a.Sync.Prune,
		SelfHeal:          a.Sync.SelfHeal,
		SyncOptions:       a.SyncOptions,
		ClusterResources:  clusterResources(s, apis, apps),
	}
	if opts.SyncOptions == nil {
		opts.SyncOptions = []string{} // the stack's schema gives the defaults
	}
	for _, r := range apps {
		opts.Apps = append(opts.Apps, argocd.App{
			Name:        r.app.Name,
			Namespace:   r.app.Namespace,
			Namespaces:  r.namespaces(),
			Wave:        waves[r.app.Name],
			SyncOptions: r.app.ArgoCD.SyncOptions,
		})
	}
	opts.Apps = append(opts.Apps, jobApps(s, waves)...)
	if hasMonitoring(tree) {
		opts.Apps = append(opts.Apps, monitoringApps(s, waves)...)
	}
	files, err := argocd.Generate(opts)
	if err != nil {
		return fmt.Errorf("generating Argo CD objects: %w", err)
	}
	for _, f := range files {
		if err := addGenerated(tree, f.Path, f.Data); err != nil {
			return fmt.Errorf("generating Argo CD objects: %w", err)
		}
	}
	return nil
}

// clusterResources lists the cluster-scoped kinds of the apps' objects,
// and those the stack adds, for the AppProject's whitelist.
func clusterResources(s *stack.Stack, p *apiProvider, apps []*renderedApp) []argocd.GroupKind {
	set := map[argocd.GroupKind]bool{}
	for _, r := range apps {
		for _, o := range r.objects {
			if p.clusterScopedKind(o) {
				set[argocd.GroupKind{Group: o.Group(), Kind: o.Kind}] = true
			}
		}
	}
	if a := s.Delivery.ArgoCD; a != nil {
		for _, gk := range a.ClusterResources {
			set[argocd.GroupKind{Group: gk.Group, Kind: gk.Kind}] = true
		}
	}
	out := make([]argocd.GroupKind, 0, len(set))
	for gk := range set {
		out = append(out, gk)
	}
	slices.SortFunc(out, func(a, b argocd.GroupKind) int {
		return strings.Compare(a.Group+"/"+a.Kind, b.Group+"/"+b.Kind)
	})
	return out
}

// jobApps are the Argo CD Applications of the jobs: one each, like an
// app's.
func jobApps(s *stack.Stack, waves map[string]int) []argocd.App {
	var out []argocd.App
	for _, j := range s.Jobs {
		out = append(out, argocd.App{Name: j.Name, Namespace: j.Namespace, Wave: waves[j.Name]})
	}
	return out
}
