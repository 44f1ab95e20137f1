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
// Choices (docs/argocd.md says why at more length):
//   - Every object is named after the stack and its environment,
//     "<stack>-<env>" (or "<stack>" with no environment): the root
//     Application and the AppProject take that name, each app's Application
//     "<stack>-<env>-<app>". One Argo CD can then hold dev and prod of the
//     same stack, and several stacks. The names must be DNS-1123 labels (at
//     most 63 characters), since Argo CD uses the Application name as a
//     label value with label-based tracking.
//   - Only the root Application may follow a range (TargetRevision); every
//     child Application pins Version, the exact version of the bundle it
//     came in, so that during a release no app runs another version's
//     objects than the bundle that declared it.
//   - The root Application is in project "default": the stack's project is
//     one of the objects it creates, so it cannot host it. It syncs
//     automatically and has no finalizer, so deleting it leaves the apps
//     running; each app Application has the foreground resources
//     finalizer, in the domain-qualified form the API server accepts
//     without a warning, so deleting one (or removing it from the stack,
//     with Prune) deletes its objects first.
//   - Apps sync with SyncOptions, by default CreateNamespace=true and
//     ServerSideApply=true: client-side apply copies each object into a
//     last-applied annotation of at most 262,144 bytes, which large CRDs
//     (kube-prometheus-stack's) exceed; Flux applies server-side too.
//   - The AppProject allows the bundle's repository as its only source, one
//     destination per namespace the apps use on the destination server
//     (App.Namespace and App.Namespaces), and exactly
//     the cluster-scoped kinds the bundle has (ClusterResources), plus
//     Namespace when an app creates its namespace. Namespaced kinds are all
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
	// SyncOptions override Options.SyncOptions for this app, option by
	// option (by the key before "=").
	SyncOptions []string
}

// GroupKind is a kind of object, by API group ("" for the core group).
type GroupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}

// Options describe the stack to generate Argo CD objects for.
type Options struct {
	StackName string
	// Environment is the stack's environment ("" for none), part of every
	// object name.
	Environment string
	// Version is the exact version of the bundle (its tag): what every
	// child Application deploys, whatever TargetRevision the root follows.
	Version string
	// RepoURL is the bundle's repository, oci://<registry>/<repository>,
	// with no tag or digest.
	RepoURL string
	// TargetRevision is the tag, digest (sha256:...) or semver constraint
	// the root Application follows. Default Version.
	TargetRevision string
	// Namespace is Argo CD's namespace, where the Applications and the
	// AppProject go. Default DefaultNamespace.
	Namespace string
	// Project names the stack's AppProject. Default: the root
	// Application's name, "<stack>-<env>" or "<stack>".
	Project string
	// DestinationServer is the cluster API server the apps deploy to.
	// Default DefaultDestinationServer (the cluster Argo CD runs in).
	DestinationServer string
	// Automated turns on automated sync of the apps; Prune and SelfHeal
	// need it.
	Automated, Prune, SelfHeal bool
	// SyncOptions are the sync options of every app's Application, "Key=value".
	// nil means DefaultSyncOptions; an empty list, none.
	SyncOptions []string
	// ClusterResources are the cluster-scoped kinds the bundle's apps
	// have: the AppProject allows these and no others (and Namespace,
	// when an app has CreateNamespace=true).
	ClusterResources []GroupKind
	Apps             []App
}

// DefaultSyncOptions are the sync options of the apps unless Options says
// otherwise: create the destination namespace, and apply server-side, so
// that objects over the 262,144-byte last-applied annotation limit (large
// CRDs) apply at all.
var DefaultSyncOptions = []string{"CreateNamespace=true", "ServerSideApply=true"}

const (
	// finalizer is Argo CD's ForegroundPropagationPolicyFinalizer
	// (common/common.go): the bare resources-finalizer.argocd.argoproj.io
	// means the same, but is not domain-qualified, which the API server
	// warns about.
	finalizer   = "resources-finalizer.argocd.argoproj.io/foreground"
	waveKey     = "argocd.argoproj.io/sync-wave"
	partOfLabel = "app.kubernetes.io/part-of"
	apiVersion  = "argoproj.io/v1alpha1"
	projectFile = bundles.ArgoCDDir + "/apps/project.yaml"
	rootFile    = bundles.ArgoCDDir + "/root.yaml"
	appsDir     = bundles.ArgoCDDir + "/apps"
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

	whitelist := slices.Clone(o.ClusterResources)
	for _, a := range o.Apps {
		if v, ok := syncOption(o.appSyncOptions(a), "CreateNamespace"); ok && v == "true" {
			// Argo CD checks the Namespace it creates against the project.
			whitelist = append(whitelist, GroupKind{Kind: "Namespace"})
			break
		}
	}
	slices.SortFunc(whitelist, compareGroupKind)
	whitelist = slices.Compact(whitelist)
	if whitelist == nil {
		whitelist = []GroupKind{} // an empty list allows none; a missing one too, but say so
	}

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
			ClusterResourceWhitelist: whitelist,
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
		var sp *syncPolicy
		if opts := o.appSyncOptions(a); o.Automated || len(opts) > 0 {
			sp = &syncPolicy{SyncOptions: opts}
		}
		if o.Automated {
			sp.Automated = &automated{Prune: o.Prune, SelfHeal: o.SelfHeal}
		}
		app := application{
			APIVersion: apiVersion,
			Kind:       "Application",
			Metadata: metadata{
				Name:        o.appName(a.Name),
				Namespace:   o.Namespace,
				Labels:      map[string]string{partOfLabel: o.StackName},
				Annotations: map[string]string{waveKey: strconv.Itoa(a.Wave)},
				Finalizers:  []string{finalizer},
			},
			Spec: applicationSpec{
				Project:     o.Project,
				Source:      source{RepoURL: o.RepoURL, TargetRevision: o.Version, Path: a.path()},
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
			Name:      o.rootName(),
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
		return bundles.AppDir(a.Name)
	}
	return a.Path
}

// rootName is the name of the root Application and the default project:
// the stack and its environment.
func (o *Options) rootName() string {
	if o.Environment == "" {
		return o.StackName
	}
	return o.StackName + "-" + o.Environment
}

// appName is the name of an app's Application.
func (o *Options) appName(app string) string { return o.rootName() + "-" + app }

// appSyncOptions is the app's sync options: Options.SyncOptions with the
// app's own replacing those with the same key, in the order first given.
func (o *Options) appSyncOptions(a App) []string {
	out := slices.Clone(o.SyncOptions)
	for _, opt := range a.SyncOptions {
		k, _, _ := strings.Cut(opt, "=")
		i := slices.IndexFunc(out, func(s string) bool { sk, _, _ := strings.Cut(s, "="); return sk == k })
		if i >= 0 {
			out[i] = opt
		} else {
			out = append(out, opt)
		}
	}
	return out
}

// syncOption returns the value of the option key among opts.
func syncOption(opts []string, key string) (string, bool) {
	for _, opt := range opts {
		if k, v, _ := strings.Cut(opt, "="); k == key {
			return v, true
		}
	}
	return "", false
}

func compareGroupKind(a, b GroupKind) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return strings.Compare(a.Kind, b.Kind)
}

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Project == "" {
		o.Project = o.rootName()
	}
	if o.TargetRevision == "" {
		o.TargetRevision = o.Version
	}
	if o.SyncOptions == nil {
		o.SyncOptions = slices.Clone(DefaultSyncOptions)
	}
	if o.DestinationServer == "" {
		o.DestinationServer = DefaultDestinationServer
	}
}

// revisionRe rejects whitespace at the ends of a revision, which a YAML
// block scalar in the stack could leave there.
var revisionRe = regexp.MustCompile(`^\S(.*\S)?$`)

// tagRe is an OCI tag (distribution-spec).
var tagRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// syncKeyRe is the key of a sync option (Argo CD's are CamelCase words).
var syncKeyRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

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
	if o.Environment != "" {
		label("environment", o.Environment)
	}
	if n := o.rootName(); o.StackName != "" && len(n) > validation.DNS1123LabelMaxLength {
		bad("root Application name %q is longer than %d characters; shorten the stack or environment name", n, validation.DNS1123LabelMaxLength)
	}
	label("namespace", o.Namespace)
	label("project", o.Project)
	if o.Project == "default" {
		bad(`project "default" is Argo CD's own; name the stack's project otherwise`)
	}
	if err := checkRepoURL(o.RepoURL); err != nil {
		errs = append(errs, err)
	}
	switch {
	case o.Version == "":
		bad("version is empty: child Applications pin the bundle's exact version")
	case !tagRe.MatchString(o.Version):
		bad("version %q: not a valid OCI tag", o.Version)
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
	checkSyncOptions := func(what string, opts []string) {
		for _, opt := range opts {
			if k, v, ok := strings.Cut(opt, "="); !ok || !syncKeyRe.MatchString(k) || v == "" {
				bad("%ssync option %q: want Key=value, such as ServerSideApply=true", what, opt)
			}
		}
	}
	checkSyncOptions("", o.SyncOptions)
	for _, gk := range o.ClusterResources {
		if gk.Kind == "" || strings.Contains(gk.Kind, "*") || strings.Contains(gk.Group, "*") {
			bad("cluster resource %+v: want a group and an exact kind", gk)
		}
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
		checkSyncOptions(what+": ", a.SyncOptions)
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
		if n := o.appName(a.Name); o.StackName != "" && a.Name != "" && len(n) > validation.DNS1123LabelMaxLength {
			bad("%s: Application name %q is longer than %d characters; shorten the stack, environment or app name", what, n, validation.DNS1123LabelMaxLength)
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
	ClusterResourceWhitelist []GroupKind   `json:"clusterResourceWhitelist"`
}
