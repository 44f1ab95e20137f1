// Package argocd generates the Argo CD objects that deploy a galley bundle
// from its OCI registry: one AppProject for the stack, one Application per
// app, and a root Application (app of apps) that the user applies once.
//
// Layout, all under argocd/ in the bundle:
//
//	argocd/root.yaml          the root Application: path argocd/apps of the
//	                          same artifact and revision, project "default"
//	argocd/apps/project.yaml  the stack's AppProject
//	argocd/apps/<app>.yaml    one Application per app: path apps/<app>
//	                          (or App.Path, e.g. monitoring)
//
// Choices:
//   - Application names are "<stack>-<app>", so that several stacks can share
//     Argo CD's namespace; the root Application is named "<stack>". Both must
//     be DNS-1123 labels (at most 63 characters), since Argo CD uses the
//     Application name as a label value with label-based tracking.
//   - The root Application is in project "default": the stack's project is
//     one of the objects it creates, so it cannot host it. It syncs
//     automatically and has no finalizer, so deleting it leaves the apps
//     running; each app Application has resources-finalizer, so deleting
//     one (or removing it from the stack, with Prune) deletes its objects.
//   - The AppProject allows the bundle's repository as its only source, one
//     destination per namespace the apps use on the destination server
//     (App.Namespace and App.Namespaces), and every
//     cluster-scoped kind: charts install CRDs, ClusterRoles, webhooks and,
//     with CreateNamespace=true, Namespaces. Namespaced kinds are all
//     allowed by default. Its sync wave is one below the lowest app wave
//     (at most -1), so it exists before any Application that names it.
//   - Waves order the apps only if Argo CD assesses Application health,
//     which it stopped doing in 1.8: see HealthCheckKey.
package argocd

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/galley-dev/galley/bundles"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Defaults for Options.
const (
	DefaultNamespace         = "argocd"
	DefaultDestinationServer = "https://kubernetes.default.svc"
)

// HealthCheckKey and HealthCheckLua are the argocd-cm entry that restores
// the health assessment of Application objects, which the root Application
// needs to wait for one wave of apps to be healthy before the next.
// Upstream documents it in operator-manual/health.md ("Argocd App").
const (
	HealthCheckKey = "resource.customizations.health.argoproj.io_Application"
	HealthCheckLua = `hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
`
)

// App is one app of the stack, deployed from apps/<Name> of the bundle.
type App struct {
	Name      string
	Namespace string // destination namespace
	// Path is the bundle directory the app deploys, when it is not
	// apps/<Name> (monitoring/, say): a clean relative path.
	Path string
	// Namespaces lists the other namespaces the app's objects name (a
	// chart may put a Service in kube-system): the AppProject must allow
	// them as destinations too.
	Namespaces []string
	Wave       int // argocd.argoproj.io/sync-wave; lower waves sync first
}

// Options describe the stack to generate Argo CD objects for.
type Options struct {
	StackName string
	// RepoURL is the bundle's repository, oci://<registry>/<repository>,
	// with no tag or digest.
	RepoURL string
	// TargetRevision is the tag, digest (sha256:...) or semver constraint
	// Argo CD deploys.
	TargetRevision string
	// Namespace is Argo CD's namespace, where the Applications and the
	// AppProject go. Default DefaultNamespace.
	Namespace string
	// Project names the stack's AppProject. Default: StackName.
	Project string
	// DestinationServer is the cluster API server the apps deploy to.
	// Default DefaultDestinationServer (the cluster Argo CD runs in).
	DestinationServer string
	// Automated turns on automated sync of the apps; Prune and SelfHeal
	// need it.
	Automated, Prune, SelfHeal bool
	Apps                       []App
}

const (
	finalizer   = "resources-finalizer.argocd.argoproj.io"
	waveKey     = "argocd.argoproj.io/sync-wave"
	partOfLabel = "app.kubernetes.io/part-of"
	apiVersion  = "argoproj.io/v1alpha1"
	projectFile = "argocd/apps/project.yaml"
	rootFile    = "argocd/root.yaml"
	appsDir     = "argocd/apps"
)

// Generate returns the Argo CD files for o, sorted by path. The YAML is
// deterministic: the same Options give the same bytes.
func Generate(o Options) ([]bundles.File, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}

	minWave := 0
	for _, a := range o.Apps {
		minWave = min(minWave, a.Wave)
	}
	var dests []destination
	for _, a := range o.Apps {
		for _, ns := range append([]string{a.Namespace}, a.Namespaces...) {
			dests = append(dests, destination{Server: o.DestinationServer, Namespace: ns})
		}
	}
	slices.SortFunc(dests, func(a, b destination) int { return strings.Compare(a.Namespace, b.Namespace) })
	dests = slices.Compact(dests)

	project := appProject{
		APIVersion: apiVersion,
		Kind:       "AppProject",
		Metadata: metadata{
			Name:        o.Project,
			Namespace:   o.Namespace,
			Labels:      map[string]string{partOfLabel: o.StackName},
			Annotations: map[string]string{waveKey: strconv.Itoa(min(-1, minWave-1))},
		},
		Spec: appProjectSpec{
			Description:              "Apps of the galley stack " + o.StackName,
			SourceRepos:              []string{o.RepoURL},
			Destinations:             dests,
			ClusterResourceWhitelist: []groupKind{{Group: "*", Kind: "*"}},
		},
	}

	files := []bundles.File{}
	add := func(path, header string, v any) error {
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", path, err)
		}
		files = append(files, bundles.File{Path: path, Data: append([]byte(header), b...)})
		return nil
	}
	header := "# Generated by galley for stack " + o.StackName + ". Do not edit.\n"
	if err := add(projectFile, header, project); err != nil {
		return nil, err
	}
	for _, a := range o.Apps {
		sp := &syncPolicy{SyncOptions: []string{"CreateNamespace=true"}}
		if o.Automated {
			sp.Automated = &automated{Prune: o.Prune, SelfHeal: o.SelfHeal}
		}
		app := application{
			APIVersion: apiVersion,
			Kind:       "Application",
			Metadata: metadata{
				Name:        o.StackName + "-" + a.Name,
				Namespace:   o.Namespace,
				Labels:      map[string]string{partOfLabel: o.StackName},
				Annotations: map[string]string{waveKey: strconv.Itoa(a.Wave)},
				Finalizers:  []string{finalizer},
			},
			Spec: applicationSpec{
				Project:     o.Project,
				Source:      source{RepoURL: o.RepoURL, TargetRevision: o.TargetRevision, Path: a.path()},
				Destination: destination{Server: o.DestinationServer, Namespace: a.Namespace},
				SyncPolicy:  sp,
			},
		}
		if err := add(appsDir+"/"+a.Name+".yaml", header, app); err != nil {
			return nil, err
		}
	}

	root := application{
		APIVersion: apiVersion,
		Kind:       "Application",
		Metadata: metadata{
			Name:      o.StackName,
			Namespace: o.Namespace,
			Labels:    map[string]string{partOfLabel: o.StackName},
		},
		Spec: applicationSpec{
			Project: "default",
			Source:  source{RepoURL: o.RepoURL, TargetRevision: o.TargetRevision, Path: appsDir},
			// Applications and AppProjects live in Argo CD's own
			// cluster, whatever cluster the apps go to.
			Destination: destination{Server: DefaultDestinationServer, Namespace: o.Namespace},
			SyncPolicy:  &syncPolicy{Automated: &automated{Prune: o.Prune, SelfHeal: o.SelfHeal}},
		},
	}
	rootHeader := header + "# Apply once to deploy the stack: kubectl apply -n " + o.Namespace + " -f root.yaml\n"
	if err := add(rootFile, rootHeader, root); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b bundles.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

func (a App) path() string {
	if a.Path == "" {
		return "apps/" + a.Name
	}
	return a.Path
}

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Project == "" {
		o.Project = o.StackName
	}
	if o.DestinationServer == "" {
		o.DestinationServer = DefaultDestinationServer
	}
}

// revisionRe rejects whitespace at the ends of a revision, which a YAML
// block scalar in the stack could leave there.
var revisionRe = regexp.MustCompile(`^\S(.*\S)?$`)

func (o *Options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	label := func(what, v string) {
		if v == "" {
			bad("%s is empty", what)
			return
		}
		for _, msg := range validation.IsDNS1123Label(v) {
			bad("%s %q: %s", what, v, msg)
		}
	}

	label("stack name", o.StackName)
	label("namespace", o.Namespace)
	label("project", o.Project)
	if o.Project == "default" {
		bad(`project "default" is Argo CD's own; name the stack's project otherwise`)
	}
	if err := checkRepoURL(o.RepoURL); err != nil {
		errs = append(errs, err)
	}
	switch {
	case o.TargetRevision == "":
		bad("target revision is empty")
	case !revisionRe.MatchString(o.TargetRevision):
		bad("target revision %q: leading or trailing space", o.TargetRevision)
	}
	if !strings.HasPrefix(o.DestinationServer, "https://") && !strings.HasPrefix(o.DestinationServer, "http://") {
		bad("destination server %q: want an http(s) URL", o.DestinationServer)
	}
	if !o.Automated && (o.Prune || o.SelfHeal) {
		bad("prune and self-heal need automated sync")
	}
	if len(o.Apps) == 0 {
		bad("no apps")
	}
	seen := map[string]bool{}
	for i, a := range o.Apps {
		what := fmt.Sprintf("app %d", i)
		if a.Name != "" {
			what = fmt.Sprintf("app %q", a.Name)
		}
		label(what+": name", a.Name)
		label(what+": namespace", a.Namespace)
		for _, ns := range a.Namespaces {
			label(what+": other namespace", ns)
		}
		switch {
		case seen[a.Name]:
			bad("%s: defined twice", what)
		case a.Name == "project":
			bad("%s: the name clashes with %s; rename the app", what, projectFile)
		}
		seen[a.Name] = true
		if p := a.Path; p != "" && (path.Clean(p) != p || path.IsAbs(p) || p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\")) {
			bad("%s: path %q: want a clean relative path inside the bundle", what, p)
		}
		if n := o.StackName + "-" + a.Name; o.StackName != "" && a.Name != "" && len(n) > validation.DNS1123LabelMaxLength {
			bad("%s: Application name %q is longer than %d characters; shorten the stack or app name", what, n, validation.DNS1123LabelMaxLength)
		}
	}
	return errors.Join(errs...)
}

// checkRepoURL accepts oci://<registry>/<repository> with an explicit
// registry and no tag or digest: Argo CD takes the revision from
// targetRevision.
func checkRepoURL(u string) error {
	err := bundles.CheckRepositoryURL(u)
	if errors.Is(err, bundles.ErrRepositoryTag) || errors.Is(err, bundles.ErrRepositoryDigest) {
		return fmt.Errorf("repo URL %w; the revision goes in the target revision", err)
	}
	if err != nil {
		return fmt.Errorf("repo URL %w", err)
	}
	return nil
}

// The subset of Argo CD's types galley writes. Maps are marshalled with
// sorted keys, so the YAML is stable.
type metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Finalizers  []string          `json:"finalizers,omitempty"`
}

type application struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   metadata        `json:"metadata"`
	Spec       applicationSpec `json:"spec"`
}

type applicationSpec struct {
	Project     string      `json:"project"`
	Source      source      `json:"source"`
	Destination destination `json:"destination"`
	SyncPolicy  *syncPolicy `json:"syncPolicy,omitempty"`
}

type source struct {
	RepoURL        string `json:"repoURL"`
	TargetRevision string `json:"targetRevision"`
	Path           string `json:"path"`
}

type destination struct {
	Server    string `json:"server"`
	Namespace string `json:"namespace"`
}

type syncPolicy struct {
	Automated   *automated `json:"automated,omitempty"`
	SyncOptions []string   `json:"syncOptions,omitempty"`
}

// automated keeps false values: an explicit prune: false says the choice
// was made.
type automated struct {
	Prune    bool `json:"prune"`
	SelfHeal bool `json:"selfHeal"`
}

type appProject struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   metadata       `json:"metadata"`
	Spec       appProjectSpec `json:"spec"`
}

type appProjectSpec struct {
	Description              string        `json:"description"`
	SourceRepos              []string      `json:"sourceRepos"`
	Destinations             []destination `json:"destinations"`
	ClusterResourceWhitelist []groupKind   `json:"clusterResourceWhitelist"`
}

type groupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}
