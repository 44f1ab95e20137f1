package compiler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/alerts"
	"github.com/galley-dev/galley/compiler/flux"
	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// addFlux writes flux/ for a stack delivered with Flux: a Kustomization
// for each app, each job and monitoring/, which mirror the stack's
// dependencies, and the root objects the user applies once.
func addFlux(tree *bundles.Tree, s *stack.Stack, apps []*renderedApp) error {
	f := s.Delivery.Flux
	if f == nil {
		return nil
	}
	if errs := s.CheckFlux(); len(errs) > 0 {
		return errs
	}
	opts := flux.Options{
		StackName:   s.Name,
		Environment: s.Environment,
		URL:         f.Repository,
		Ref:         flux.Ref{Tag: f.Ref.Tag, Semver: f.Ref.Semver},
		Namespace:   f.Namespace,
		Interval:    f.Interval,
		Timeout:     f.Timeout,
		PullSecret:  f.PullSecret,
		Prune:       f.Prune,
		Wait:        f.Wait,
	}
	if opts.Ref == (flux.Ref{}) {
		opts.Ref.Tag = s.Version
	}
	if f.Verify != nil {
		opts.VerifySecret = f.Verify.SecretRef
		opts.TrustedRootSecret = f.Verify.TrustedRootSecretRef
		for _, id := range f.Verify.MatchOIDCIdentity {
			opts.VerifyIdentities = append(opts.VerifyIdentities, flux.OIDCIdentity{Issuer: id.Issuer, Subject: id.Subject})
		}
	}

	var errs stack.Errors
	var all []string
	for _, r := range apps {
		a := flux.App{Name: r.app.Name, Namespace: r.app.Namespace, DependsOn: r.app.DependsOn}
		for _, o := range r.objects {
			a.PreHooks = a.PreHooks || o.preHook
		}
		if others := r.namespaces(); len(others) > 0 {
			if bare := unnamespaced(r); len(bare) > 0 {
				errs = append(errs, appError(r.app, "",
					"Flux cannot deploy app %s: it writes objects into namespaces %s, which Flux's targetNamespace would move into %s, "+
						"and objects with no namespace (%s), which need it; set their namespace with a patch",
					r.app.Name, strings.Join(others, ", "), r.app.Namespace, strings.Join(bare, ", ")))
				continue
			}
			a.KeepNamespaces = true
		}
		opts.Apps = append(opts.Apps, a)
		all = append(all, a.Name)
	}
	if len(errs) > 0 {
		return errs
	}
	for _, j := range s.Jobs {
		opts.Apps = append(opts.Apps, flux.App{Name: j.Name, Namespace: j.Namespace, DependsOn: j.DependsOn})
		all = append(all, j.Name)
	}
	if m := s.Monitoring; m != nil && hasMonitoring(tree) {
		// After every app and job, as in Argo CD's last wave: the
		// PrometheusRule and AlertmanagerConfig CRDs come with them.
		opts.Apps = append(opts.Apps, flux.App{Name: m.AppName, Namespace: m.Namespace, Path: alerts.Dir, DependsOn: all})
	}

	files, err := flux.Generate(opts)
	if err != nil {
		return fmt.Errorf("generating Flux objects: %w", err)
	}
	for _, f := range files {
		if err := addGenerated(tree, f.Path, f.Data); err != nil {
			return fmt.Errorf("generating Flux objects: %w", err)
		}
	}
	return nil
}

// unnamespaced names the first few namespaced objects of an app that have
// no namespace of their own.
func unnamespaced(r *renderedApp) []string {
	var out []string
	for _, o := range r.objects {
		if o.Namespace == "" && !manifest.ClusterScoped[o.Kind] {
			out = append(out, o.Kind+"/"+o.Name)
		}
	}
	slices.Sort(out)
	if len(out) > 3 {
		out = append(out[:3], "...")
	}
	return out
}
