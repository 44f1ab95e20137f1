// Package flux generates the Flux objects that deploy a galley bundle from
// its OCI registry: an OCIRepository for the bundle, one Kustomization per
// app, and a root Kustomization that the user applies once, with the
// OCIRepository.
//
// Layout, all under flux/ in the bundle:
//
//	flux/root/ocirepository.yaml    the bundle's OCIRepository
//	flux/root/kustomization.yaml    the root Kustomization: path ./flux/apps
//	                                of the same artifact
//	flux/apps/<app>.yaml            one Kustomization per app: path
//	                                ./apps/<app> (or App.Path)
//	flux/apps/namespaces/<ns>.yaml  the apps' namespaces
//
// Choices:
//   - The user applies flux/root/ once; the root Kustomization then applies
//     everything under flux/apps/ (Flux reads a directory recursively) from
//     each new artifact. flux/root/ is outside that path, so the
//     OCIRepository the user applied is never overwritten by a bundle:
//     moving to another tag or range is the user's change.
//   - Kustomization names are "<stack>-<env>-<app>" ("<stack>-<app>"
//     without an environment) so that several stacks, and several
//     environments of one, can share Flux's namespace; the OCIRepository
//     and the root Kustomization are named "<stack>-<env>" (or "<stack>"). Flux labels every object it applies with the
//     Kustomization name, so the names are DNS-1123 labels of at most 63
//     characters.
//   - dependsOn mirrors the stack's dependencies: a Kustomization waits for
//     the Kustomizations of the apps it depends on to be Ready, which with
//     Wait means their objects are healthy. Sync waves are Argo CD's only.
//   - Flux does not create namespaces, and targetNamespace needs the
//     namespace to exist: galley writes a Namespace object for each app
//     namespace under flux/apps/namespaces/, which the root Kustomization
//     applies before the app Kustomizations can run. They carry
//     kustomize.toolkit.fluxcd.io/prune: disabled: removing the last app of
//     a namespace must not delete the namespace and whatever else is in it
//     (volumes, Secrets made by hand).
//   - targetNamespace overrides the namespace of every namespaced object
//     (kustomize's namespace transformer), where Argo CD's destination
//     namespace only fills in missing ones. An app whose objects carry their
//     own namespaces, some outside its namespace, sets KeepNamespaces, and
//     its Kustomization has no targetNamespace.
//   - The root Kustomization always prunes, so an app that leaves the stack
//     loses its Kustomization; whether that deletes the app's objects is
//     the app Kustomization's Prune (Flux orphans them otherwise). It does
//     not wait: the apps' own readiness is what dependsOn uses.
//   - Helm hooks (docs/flux.md): an app whose chart has pre-install or
//     pre-upgrade hooks (App.PreHooks) gets a second Kustomization,
//     "<stack>-<app>-hooks", over the same path, which keeps only the
//     objects galley marked with HookPhaseKey (kustomize $patch: delete
//     drops the others) and waits for them; the app's Kustomization drops
//     those objects and depends on it, as Helm runs pre-install hooks to
//     completion first. Post-install hooks stay with the app's objects,
//     whose workloads often wait for them. Hook Jobs and Pods carry
//     kustomize.toolkit.fluxcd.io/force, so a changed spec replaces them.
//   - The OCIRepository selects the bundle's one layer by media type and
//     extracts it; with a verify Secret, Flux checks the cosign signature
//     first and refuses an unsigned or wrongly signed bundle.
package flux

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/galley-dev/galley/bundles"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Defaults for Options.
const (
	DefaultNamespace = "flux-system"
	DefaultInterval  = "10m"
)

// API versions of the generated objects: the versions Flux v2.6 and later
// serve (source-controller and kustomize-controller v1.6 to v1.9 at least).
const (
	SourceAPIVersion    = "source.toolkit.fluxcd.io/v1"
	KustomizeAPIVersion = "kustomize.toolkit.fluxcd.io/v1"
)

// Paths of the generated files.
const (
	Dir               = bundles.FluxDir
	RootDir           = Dir + "/root"
	AppsDir           = Dir + "/apps"
	OCIRepositoryFile = RootDir + "/ocirepository.yaml"
	KustomizationFile = RootDir + "/kustomization.yaml"
	NamespacesDir     = AppsDir + "/namespaces"
)

// HookPhaseKey marks the objects of an app that its hooks Kustomization
// applies before the app's own (pre-install and pre-upgrade hooks), with
// the value HookPhasePre.
const (
	HookPhaseKey = "galley.dev/hook-phase"
	HookPhasePre = "pre"
)

// PruneDisabledKey is the annotation that keeps Flux from deleting an
// object it no longer finds in the source.
const PruneDisabledKey = "kustomize.toolkit.fluxcd.io/prune"

// App is one app of the stack, deployed from apps/<Name> of the bundle.
type App struct {
	Name      string
	Namespace string // targetNamespace, created under flux/apps/namespaces/
	// Path is the bundle directory the app deploys, when it is not
	// apps/<Name> (monitoring, say): a clean relative path.
	Path string
	// DependsOn names other apps of Apps that must be Ready first.
	DependsOn []string
	// KeepNamespaces says the app's objects carry their own namespaces,
	// some of them outside Namespace: the Kustomization then sets no
	// targetNamespace, which would move them all into Namespace.
	KeepNamespaces bool
	// PreHooks says some of the app's objects carry HookPhaseKey: a
	// Kustomization of their own applies them, and waits for them, first.
	PreHooks bool
}

// Ref selects the version of the bundle Flux deploys. Set exactly one.
type Ref struct {
	Tag string
	// Semver is a range (Masterminds semver, as Flux parses it): Flux
	// deploys the highest tag in it.
	Semver string
}

// Options describe the stack to generate Flux objects for.
type Options struct {
	StackName string
	// Environment is the stack's environment ("" for none), part of every
	// Flux object's name: "<stack>-<env>" and "<stack>-<env>-<app>".
	Environment string
	// URL is the bundle's repository, oci://<registry>/<repository>, with
	// no tag or digest.
	URL string
	Ref Ref
	// Namespace is Flux's namespace, where every generated Flux object
	// goes. Default DefaultNamespace.
	Namespace string
	// Interval is how often Flux checks the registry and reapplies the
	// apps. Default DefaultInterval.
	Interval string
	// Timeout bounds each Kustomization's apply and health checks; ""
	// leaves Flux's default, the interval.
	Timeout string
	// VerifySecret names the Secret in Namespace holding the cosign public
	// key (cosign.pub) the bundle must be signed with; "" verifies
	// nothing.
	VerifySecret string
	// VerifyIdentities are the keyless signers Flux accepts, by OIDC
	// issuer and subject regular expressions (matchOIDCIdentity); set
	// instead of VerifySecret. Flux accepts a keyless signature from
	// anyone when neither is set, so Generate never writes that.
	VerifyIdentities []OIDCIdentity
	// TrustedRootSecret names the Secret in Namespace holding a
	// trusted_root.json (a private Sigstore's Fulcio and Rekor), for Flux
	// 2.9+ (trustedRootSecretRef); "" trusts public-good Sigstore.
	TrustedRootSecret string
	// PullSecret names a kubernetes.io/dockerconfigjson Secret in Namespace
	// with the registry's credentials; "" for anonymous pulls.
	PullSecret string
	// Prune deletes objects an app no longer renders, and all of an app's
	// objects when it leaves the stack.
	Prune bool
	// Wait makes an app Ready only once all its objects are healthy.
	Wait bool
	Apps []App
}

const partOfLabel = "app.kubernetes.io/part-of"

// Generate returns the Flux files for o, sorted by path. The YAML is
// deterministic: the same Options give the same bytes, whatever the order
// of Apps and of their DependsOn.
func Generate(o Options) ([]bundles.File, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}

	labels := map[string]string{partOfLabel: o.StackName}
	header := "# Generated by galley for stack " + o.StackName + ". Do not edit.\n"
	files := []bundles.File{}
	add := func(path, header string, v any) error {
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", path, err)
		}
		files = append(files, bundles.File{Path: path, Data: append([]byte(header), b...)})
		return nil
	}

	repo := ociRepository{
		APIVersion: SourceAPIVersion,
		Kind:       "OCIRepository",
		Metadata:   metadata{Name: o.rootName(), Namespace: o.Namespace, Labels: labels},
		Spec: ociRepositorySpec{
			Interval: o.Interval,
			URL:      o.URL,
			Ref:      ociRef{Tag: o.Ref.Tag, Semver: o.Ref.Semver},
			// The bundle has one layer; naming its type keeps Flux from
			// taking another should a later galley add, say, an SBOM.
			LayerSelector: layerSelector{MediaType: bundles.LayerMediaType, Operation: "extract"},
		},
	}
	switch {
	case o.VerifySecret != "":
		repo.Spec.Verify = &verify{Provider: "cosign", SecretRef: &localRef{Name: o.VerifySecret}}
	case len(o.VerifyIdentities) > 0:
		repo.Spec.Verify = &verify{Provider: "cosign", MatchOIDCIdentity: o.VerifyIdentities}
	}
	if repo.Spec.Verify != nil && o.TrustedRootSecret != "" {
		repo.Spec.Verify.TrustedRootSecretRef = &localRef{Name: o.TrustedRootSecret}
	}
	if o.PullSecret != "" {
		repo.Spec.SecretRef = &localRef{Name: o.PullSecret}
	}
	applyOnce := header + "# Apply once, with the other file of flux/root/, to deploy the stack:\n" +
		"#   kubectl apply -f flux/root/\n"
	if err := add(OCIRepositoryFile, applyOnce, repo); err != nil {
		return nil, err
	}

	source := sourceRef{Kind: "OCIRepository", Name: o.rootName()}
	root := kustomization{
		APIVersion: KustomizeAPIVersion,
		Kind:       "Kustomization",
		Metadata:   metadata{Name: o.rootName(), Namespace: o.Namespace, Labels: labels},
		Spec: kustomizationSpec{
			Interval:  o.Interval,
			Timeout:   o.Timeout,
			Path:      "./" + AppsDir,
			Prune:     true,
			SourceRef: source,
		},
	}
	if err := add(KustomizationFile, applyOnce, root); err != nil {
		return nil, err
	}

	namespaces := map[string]bool{}
	for _, a := range o.Apps {
		k := kustomization{
			APIVersion: KustomizeAPIVersion,
			Kind:       "Kustomization",
			Metadata:   metadata{Name: o.name(a.Name), Namespace: o.Namespace, Labels: labels},
			Spec: kustomizationSpec{
				Interval:  o.Interval,
				Timeout:   o.Timeout,
				Path:      "./" + a.path(),
				Prune:     o.Prune,
				Wait:      o.Wait,
				SourceRef: source,
			},
		}
		if !a.KeepNamespaces {
			k.Spec.TargetNamespace = a.Namespace
		}
		deps := slices.Clone(a.DependsOn)
		slices.Sort(deps)
		for _, d := range slices.Compact(deps) {
			k.Spec.DependsOn = append(k.Spec.DependsOn, dependency{Name: o.name(d)})
		}
		if a.PreHooks {
			// The hooks wait for what the app waits for, and always for
			// themselves: Helm runs them to completion.
			h := k
			h.Metadata.Name = o.hooksName(a.Name)
			h.Spec.Wait = true
			h.Spec.Patches = []patch{deleteObjects("!" + HookPhaseKey)}
			k.Spec.Patches = []patch{deleteObjects(HookPhaseKey)}
			k.Spec.DependsOn = append(slices.Clone(k.Spec.DependsOn), dependency{Name: h.Metadata.Name})
			if err := add(AppsDir+"/"+a.Name+"-hooks.yaml", header, h); err != nil {
				return nil, err
			}
		}
		if err := add(AppsDir+"/"+a.Name+".yaml", header, k); err != nil {
			return nil, err
		}
		if a.Namespace != o.Namespace {
			namespaces[a.Namespace] = true
		}
	}
	for ns := range namespaces {
		n := namespace{
			APIVersion: "v1",
			Kind:       "Namespace",
			// No part-of label: stacks may share a namespace, and each
			// would set its own.
			Metadata: metadata{Name: ns, Annotations: map[string]string{PruneDisabledKey: "disabled"}},
		}
		if err := add(NamespacesDir+"/"+ns+".yaml", header, n); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(files, func(a, b bundles.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// name is the Kustomization name of an app.
func (o *Options) name(app string) string { return o.rootName() + "-" + app }

// rootName names the OCIRepository and the root Kustomization: the stack
// and its environment, so that one Flux holds several environments of a
// stack.
func (o *Options) rootName() string {
	if o.Environment == "" {
		return o.StackName
	}
	return o.StackName + "-" + o.Environment
}

// hooksName is the name of the Kustomization of an app's pre-install hooks.
func (o *Options) hooksName(app string) string { return o.name(app) + "-hooks" }

// deleteObjects is a patch that drops the objects an annotation selector
// matches from a Kustomization's build: a strategic merge $patch: delete,
// which kustomize applies to every object of the target.
func deleteObjects(annotationSelector string) patch {
	return patch{
		Patch:  "apiVersion: v1\nkind: Delete\nmetadata:\n  name: delete\n$patch: delete\n",
		Target: patchTarget{AnnotationSelector: annotationSelector},
	}
}

func (a App) path() string {
	if a.Path == "" {
		return bundles.AppDir(a.Name)
	}
	return a.Path
}

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Interval == "" {
		o.Interval = DefaultInterval
	}
}

// durationRe is the duration syntax of Flux's CRDs (interval, timeout).
var durationRe = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)

// tagRe is an OCI tag (distribution-spec).
var tagRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

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
	duration := func(what, v string) {
		if !durationRe.MatchString(v) {
			bad("%s %q: want a duration such as 30s, 10m or 1h30m", what, v)
			return
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			bad("%s %q: want a duration above zero", what, v)
		}
	}

	label("stack name", o.StackName)
	if o.Environment != "" {
		label("environment", o.Environment)
		if n := o.rootName(); o.StackName != "" && len(n) > validation.DNS1123LabelMaxLength {
			bad("OCIRepository name %q is longer than %d characters; shorten the stack or environment name", n, validation.DNS1123LabelMaxLength)
		}
	}
	label("namespace", o.Namespace)
	if err := checkURL(o.URL); err != nil {
		errs = append(errs, err)
	}
	switch r := o.Ref; {
	case r.Tag == "" && r.Semver == "":
		bad("ref: set a tag or a semver range")
	case r.Tag != "" && r.Semver != "":
		bad("ref: set a tag or a semver range, not both")
	case r.Tag != "" && !tagRe.MatchString(r.Tag):
		bad("ref tag %q: not a valid OCI tag", r.Tag)
	case r.Semver != "":
		if _, err := semver.NewConstraint(r.Semver); err != nil {
			bad("ref semver range %q: %v", r.Semver, err)
		}
	}
	duration("interval", o.Interval)
	if o.Timeout != "" {
		duration("timeout", o.Timeout)
	}
	if o.VerifySecret != "" && len(o.VerifyIdentities) > 0 {
		bad("verify: a secret and OIDC identities exclude each other (Flux uses the key and ignores the identities)")
	}
	if o.TrustedRootSecret != "" && o.VerifySecret == "" && len(o.VerifyIdentities) == 0 {
		bad("verify: a trusted root secret verifies nothing without a secret or OIDC identities")
	}
	for i, id := range o.VerifyIdentities {
		for _, f := range []struct{ what, re string }{{"issuer", id.Issuer}, {"subject", id.Subject}} {
			if f.re == "" {
				bad("verify identity %d: no %s: Flux would accept a keyless signature from any %s", i+1, f.what, f.what)
			} else if _, err := regexp.Compile(f.re); err != nil {
				bad("verify identity %d: %s %q: %v", i+1, f.what, f.re, err)
			}
		}
	}
	for _, s := range []struct{ what, v string }{{"verify secret", o.VerifySecret}, {"trusted root secret", o.TrustedRootSecret}, {"pull secret", o.PullSecret}} {
		if s.v == "" {
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(s.v) {
			bad("%s %q: %s", s.what, s.v, msg)
		}
	}
	if len(o.Apps) == 0 {
		bad("no apps")
	}

	known := map[string]bool{}
	for _, a := range o.Apps {
		known[a.Name] = true
	}
	seen := map[string]bool{}
	for i, a := range o.Apps {
		what := fmt.Sprintf("app %d", i)
		if a.Name != "" {
			what = fmt.Sprintf("app %q", a.Name)
		}
		label(what+": name", a.Name)
		label(what+": namespace", a.Namespace)
		if seen[a.Name] {
			bad("%s: defined twice", what)
		}
		seen[a.Name] = true
		if p := a.Path; p != "" && (path.Clean(p) != p || path.IsAbs(p) || p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\")) {
			bad("%s: path %q: want a clean relative path inside the bundle", what, p)
		}
		n := o.name(a.Name)
		if a.PreHooks {
			n = o.hooksName(a.Name)
		}
		if o.StackName != "" && a.Name != "" && len(n) > validation.DNS1123LabelMaxLength {
			bad("%s: Kustomization name %q is longer than %d characters; shorten the stack, environment or app name", what, n, validation.DNS1123LabelMaxLength)
		}
		if a.PreHooks && known[a.Name+"-hooks"] {
			bad("%s: its hooks Kustomization %q would be named like app %s-hooks; rename one", what, n, a.Name)
		}
		for _, d := range a.DependsOn {
			switch {
			case d == a.Name:
				bad("%s: depends on itself", what)
			case !known[d]:
				bad("%s: depends on %q, which is not an app", what, d)
			}
		}
	}
	if len(errs) == 0 {
		if c := cycle(o.Apps); c != nil {
			bad("dependency cycle: %s: Flux would wait forever", strings.Join(c, " -> "))
		}
	}
	return errors.Join(errs...)
}

// cycle returns one dependency cycle among apps, starting and ending at
// the same app, or nil. The apps' dependencies must all be known.
func cycle(apps []App) []string {
	deps := map[string][]string{}
	var names []string
	for _, a := range apps {
		deps[a.Name] = slices.Sorted(slices.Values(a.DependsOn))
		names = append(names, a.Name)
	}
	slices.Sort(names)
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch state[d] {
			case visiting:
				i := slices.Index(stack, d)
				return append(slices.Clone(stack[i:]), d)
			case 0:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, n := range names {
		if state[n] == 0 {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// checkURL accepts oci://<registry>/<repository> with an explicit registry
// and no tag or digest: Flux takes the version from the ref.
func checkURL(u string) error {
	err := bundles.CheckRepositoryURL(u)
	if errors.Is(err, bundles.ErrRepositoryTag) || errors.Is(err, bundles.ErrRepositoryDigest) {
		return fmt.Errorf("URL %w; the version goes in the ref", err)
	}
	if err != nil {
		return fmt.Errorf("URL %w", err)
	}
	return nil
}

// The subset of Flux's types galley writes. Maps are marshalled with
// sorted keys, so the YAML is stable.
type metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ociRepository struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metadata          `json:"metadata"`
	Spec       ociRepositorySpec `json:"spec"`
}

type ociRepositorySpec struct {
	Interval      string        `json:"interval"`
	URL           string        `json:"url"`
	Ref           ociRef        `json:"ref"`
	LayerSelector layerSelector `json:"layerSelector"`
	Verify        *verify       `json:"verify,omitempty"`
	SecretRef     *localRef     `json:"secretRef,omitempty"`
}

type ociRef struct {
	Tag    string `json:"tag,omitempty"`
	Semver string `json:"semver,omitempty"`
}

type layerSelector struct {
	MediaType string `json:"mediaType"`
	Operation string `json:"operation"`
}

type verify struct {
	Provider             string         `json:"provider"`
	SecretRef            *localRef      `json:"secretRef,omitempty"`
	MatchOIDCIdentity    []OIDCIdentity `json:"matchOIDCIdentity,omitempty"`
	TrustedRootSecretRef *localRef      `json:"trustedRootSecretRef,omitempty"`
}

// OIDCIdentity is one keyless signer Flux accepts: Go regular expressions
// its certificate's OIDC issuer and subject must match
// (source-controller's OIDCIdentityMatch).
type OIDCIdentity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

type localRef struct {
	Name string `json:"name"`
}

type kustomization struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metadata          `json:"metadata"`
	Spec       kustomizationSpec `json:"spec"`
}

// kustomizationSpec keeps false values of prune and wait: an explicit
// false says the choice was made.
type kustomizationSpec struct {
	Interval        string       `json:"interval"`
	Timeout         string       `json:"timeout,omitempty"`
	Path            string       `json:"path"`
	Prune           bool         `json:"prune"`
	Wait            bool         `json:"wait"`
	TargetNamespace string       `json:"targetNamespace,omitempty"`
	SourceRef       sourceRef    `json:"sourceRef"`
	DependsOn       []dependency `json:"dependsOn,omitempty"`
	Patches         []patch      `json:"patches,omitempty"`
}

type patch struct {
	Patch  string      `json:"patch"`
	Target patchTarget `json:"target"`
}

type patchTarget struct {
	AnnotationSelector string `json:"annotationSelector,omitempty"`
}

type sourceRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type dependency struct {
	Name string `json:"name"`
}

type namespace struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
}
