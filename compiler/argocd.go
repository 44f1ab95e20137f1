package compiler

import (
	"fmt"

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
