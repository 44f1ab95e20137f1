package stack

import (
	"path/filepath"

	"cuelang.org/go/cue"
)

// Stack is a validated stack, decoded from CUE with every default applied.
type Stack struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	Source      string     `json:"source,omitempty"`
	Revision    string     `json:"revision,omitempty"`
	Kubernetes  Kubernetes `json:"kubernetes"`
	// Apps are sorted by name.
	Apps []*App `json:"-"`
	// Jobs are sorted by name.
	Jobs []*Job `json:"-"`
	// Terraform modules are sorted by name.
	Terraform []*Terraform `json:"-"`

	Delivery Delivery `json:"delivery"`
	// Monitoring is nil when the stack has no monitoring block.
	Monitoring *Monitoring `json:"monitoring,omitempty"`

	// Dir is the absolute directory the stack was loaded from; chart paths
	// are relative to it.
	Dir string `json:"-"`

	// Environment is the environment the stack was loaded for ("" for
	// none): its overlay is unified into the stack.
	Environment  string `json:"-"`
	environments []string
	// root confines the files the stack names (see Root).
	root resolvedRoot

	value cue.Value
}

// Kubernetes is the cluster the stack is rendered for.
type Kubernetes struct {
	Version     string   `json:"version"`
	APIVersions []string `json:"apiVersions"`
}

// App is one chart rendered into apps/<name>/.
type App struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Chart       Chart             `json:"chart"`
	ReleaseName string            `json:"releaseName"`
	ValuesFiles []string          `json:"valuesFiles"`
	Values      map[string]any    `json:"values"`
	Patches     []Patch           `json:"patches"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// PodTemplates adds Labels and Annotations to workloads' pod
	// templates too.
	PodTemplates bool         `json:"podTemplates"`
	Images       []Image      `json:"images"`
	DependsOn    []string     `json:"dependsOn"`
	CRDs         bool         `json:"crds"`
	Tests        bool         `json:"tests"`
	Secrets      SecretPolicy `json:"secrets"`
	// PinNow renders the chart's clock (now, and the date functions given
	// no time) as the build's SOURCE_DATE_EPOCH instead of refusing it.
	PinNow   bool      `json:"pinNow"`
	SyncWave *int      `json:"syncWave,omitempty"`
	ArgoCD   AppArgoCD `json:"argocd"`
	Hooks    Hooks     `json:"hooks"`
	Enabled  bool      `json:"enabled"`

	// fileValues are the values files, read and decoded by Load.
	fileValues []map[string]any
	value      cue.Value
}

// Path resolves a path written in the stack, relative to its directory.
func (s *Stack) Path(p string) string {
	p = filepath.FromSlash(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Chart says where an app's chart comes from: exactly one of Path, OCI
// and Repository is set (Load checks it).
type Chart struct {
	// Path is as written in the stack, relative to Stack.Dir.
	Path string `json:"path,omitempty"`
	// OCI is oci://<registry>/<repository>/<chart>, without a tag.
	OCI string `json:"oci,omitempty"`
	// Repository is the URL of a classic Helm repository (its index.yaml
	// is below it) and Name the chart in it.
	Repository string `json:"repository,omitempty"`
	Name       string `json:"name,omitempty"`
	// Version is an exact version or a semantic version range, for OCI
	// and Repository charts.
	Version string       `json:"version,omitempty"`
	Verify  *ChartVerify `json:"verify,omitempty"`
}

// ChartVerify says what must have signed a remote chart. Paths are as
// written in the stack, relative to Stack.Dir.
type ChartVerify struct {
	// Key is a cosign public key (OCI charts).
	Key string `json:"key,omitempty"`
	// Keyring is a GnuPG public keyring for Helm provenance files
	// (repository charts).
	Keyring string `json:"keyring,omitempty"`
}

// Remote says whether the chart comes from a registry or a repository
// rather than from the stack's own files.
func (c Chart) Remote() bool { return c.OCI != "" || c.Repository != "" }

// Patch is a Kustomize patch; Patch holds a strategic merge patch (a map) or
// a JSON 6902 patch (a list of operations).
type Patch struct {
	Target *Target `json:"target,omitempty"`
	Patch  any     `json:"patch"`
}

// Target selects the objects a patch applies to.
type Target struct {
	Group              string `json:"group,omitempty"`
	Version            string `json:"version,omitempty"`
	Kind               string `json:"kind,omitempty"`
	Name               string `json:"name,omitempty"`
	Namespace          string `json:"namespace,omitempty"`
	LabelSelector      string `json:"labelSelector,omitempty"`
	AnnotationSelector string `json:"annotationSelector,omitempty"`
}

// Image rewrites a container image, as kustomize's images field does.
type Image struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// AppArgoCD is what an app changes in its Argo CD Application.
type AppArgoCD struct {
	SyncOptions []string `json:"syncOptions"`
}

// Hooks says how the delivery engines run the chart's Helm hooks.
type Hooks struct {
	ArgoCD ArgoCDHooks `json:"argocd"`
}

// ArgoCDHooks maps Helm hooks to Argo CD sync phases.
type ArgoCDHooks struct {
	// PreInstall is the phase of pre-install and pre-upgrade hooks,
	// PostInstall that of post-install and post-upgrade hooks.
	PreInstall  string `json:"preInstall"`
	PostInstall string `json:"postInstall"`
	// Objects gives single hooks, by Kind/name, a phase of their own.
	Objects map[string]string `json:"objects"`
}

// SecretPolicy says what an app may put into the bundle in clear.
type SecretPolicy struct {
	AllowPlaintext bool `json:"allowPlaintext"`
	// AllowCredentials lets credentials (webhook URLs, URLs with a
	// password, private keys, tokens) appear outside Secrets: in
	// ConfigMaps and env values.
	AllowCredentials bool `json:"allowCredentials"`
}

// Delivery lists the GitOps tools that deploy the bundle.
type Delivery struct {
	ArgoCD *ArgoCD `json:"argocd,omitempty"`
	Flux   *Flux   `json:"flux,omitempty"`
}

// ArgoCD configures the generated Argo CD objects.
type ArgoCD struct {
	Repository     string   `json:"repository"`
	Namespace      string   `json:"namespace"`
	Project        string   `json:"project"`
	TargetRevision string   `json:"targetRevision,omitempty"`
	Server         string   `json:"server"`
	Sync           SyncOpts `json:"sync"`
	SyncOptions    []string `json:"syncOptions"`
	// ClusterResources are cluster-scoped kinds to allow besides those
	// found in the bundle.
	ClusterResources []GroupKind `json:"clusterResources"`
}

// GroupKind is a kind of object by API group ("" for the core group).
type GroupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}

// SyncOpts is Argo CD's automated sync policy.
type SyncOpts struct {
	Automated bool `json:"automated"`
	Prune     bool `json:"prune"`
	SelfHeal  bool `json:"selfHeal"`
}

// App returns the app with the given name, or nil.
func (s *Stack) App(name string) *App {
	for _, a := range s.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Value is the stack's CUE value, for positions in later errors.
func (s *Stack) Value() cue.Value { return s.value }

// Value is the app's CUE value, for positions in later errors.
func (a *App) Value() cue.Value { return a.value }
