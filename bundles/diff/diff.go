// Package diff compares two bundle trees the way a reviewer reads a
// release: per app (and per argocd/, flux/, monitoring/, terraform/
// section), which Kubernetes objects are added, removed or changed, and
// for a changed object which fields, by YAML path; which charts moved to
// another version; and a one-line summary.
//
// Objects are matched by API group, kind, namespace and name, not by file
// name, so a renamed file is no change and an apiVersion bump is a field
// change of the same object, as the API server sees it. Values are
// compared decoded, so comments and formatting are no change either.
// Values under data and stringData of a Secret are never copied into a
// Result: a change says which key changed, not from what to what.
//
// The Result is deterministic and renders as text (for a terminal), as
// markdown (for a pull-request comment) or as JSON.
package diff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles"
)

// Status says what happened to an app, object, file or field between the
// two bundles.
type Status string

const (
	Added   Status = "added"
	Removed Status = "removed"
	Changed Status = "changed"
)

// Section kinds, in the order sections are listed.
const (
	KindApp        = "app"
	KindJob        = "job"
	KindArgoCD     = bundles.ArgoCDDir
	KindFlux       = bundles.FluxDir
	KindMonitoring = bundles.MonitoringDir
	KindTerraform  = bundles.TerraformDir
	KindOther      = "other"
)

// Result is the difference between bundle a (From) and bundle b (To).
type Result struct {
	// From and To identify the stacks, from their bundle.json; nil for a
	// bundle without one.
	From *bundles.IndexStack `json:"from"`
	To   *bundles.IndexStack `json:"to"`
	// Stack lists changes to the stack's identity: name, version,
	// Kubernetes version, description, environment.
	Stack []FieldChange `json:"stack"`
	// Sections hold every change below the top of the tree: apps and jobs
	// by name, then argocd, flux, monitoring, terraform, then any other
	// directory by path. Unchanged sections are left out.
	Sections []*Section `json:"sections"`
	Summary  Summary    `json:"summary"`
}

// Section is one app or job directory (apps/<name>), or one of the
// bundle's other top-level directories.
type Section struct {
	Kind string `json:"kind"`
	// Name is the app or job; for the other kinds, the directory.
	Name string `json:"name"`
	// Path is the directory in the bundle; "" for files at the top.
	Path string `json:"path"`
	// Status is Added or Removed when the directory is in one bundle
	// only, else Changed.
	Status Status `json:"status"`
	// Chart is set when the app's chart changed (from bundle.json).
	Chart *ChartChange `json:"chart,omitempty"`
	// Fields are changes to the app's entry in bundle.json other than its
	// chart: namespace, dependencies, sync wave, schedule.
	Fields  []FieldChange  `json:"fields,omitempty"`
	Objects []ObjectChange `json:"objects,omitempty"`
	// Files are changes to files that are not Kubernetes objects
	// (Terraform modules, say).
	Files []FileChange `json:"files,omitempty"`
}

// ChartChange is an app's chart in each bundle; From is nil for an added
// app, To for a removed one.
type ChartChange struct {
	From *bundles.IndexChart `json:"from"`
	To   *bundles.IndexChart `json:"to"`
}

// ObjectChange is one Kubernetes object added, removed or changed.
type ObjectChange struct {
	Status     Status `json:"status"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// File is the object's file in To, or in From when removed.
	File string `json:"file"`
	// Fields are the changed fields of a changed object.
	Fields []FieldChange `json:"fields,omitempty"`
}

// ID names the object for people: Kind namespace/name.
func (o ObjectChange) ID() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// FieldChange is one field added, removed or changed.
type FieldChange struct {
	// Path is the field's YAML path: spec.template.spec.containers[0].image,
	// metadata.labels["app.kubernetes.io/name"].
	Path   string `json:"path"`
	Status Status `json:"status"`
	// From and To are the decoded values (nil when absent); both are nil
	// when Masked.
	From any `json:"from,omitempty"`
	To   any `json:"to,omitempty"`
	// Masked is set for Secret data: the values are not in the Result.
	Masked bool `json:"masked,omitempty"`
}

// FileChange is one file that is not a Kubernetes object.
type FileChange struct {
	Path   string `json:"path"`
	Status Status `json:"status"`
	// Fields are set for a changed JSON or YAML file of terraform/ or of
	// another directory; a changed file that is not an object where
	// objects belong (apps/, argocd/, flux/, monitoring/) is only listed,
	// since it may be a Secret galley could not parse.
	Fields []FieldChange `json:"fields,omitempty"`
	// Diff is a unified line diff (hunks only) of a changed text file, on
	// the same terms as Fields.
	Diff string `json:"diff,omitempty"`
	// Binary is set for a changed file that is not UTF-8 text.
	Binary bool `json:"binary,omitempty"`
}

// Summary counts the changes.
type Summary struct {
	// Apps counts the apps and jobs with any change, those added and
	// removed included.
	Apps           int `json:"apps"`
	AppsAdded      int `json:"appsAdded"`
	AppsRemoved    int `json:"appsRemoved"`
	Charts         int `json:"charts"`
	ObjectsAdded   int `json:"objectsAdded"`
	ObjectsRemoved int `json:"objectsRemoved"`
	ObjectsChanged int `json:"objectsChanged"`
	FilesAdded     int `json:"filesAdded"`
	FilesRemoved   int `json:"filesRemoved"`
	FilesChanged   int `json:"filesChanged"`
}

// String is the one-line summary: "3 apps changed, 2 objects added, 1
// removed, 5 changed".
func (s Summary) String() string {
	if s == (Summary{}) {
		return "no changes"
	}
	apps := plural(s.Apps, "app", "apps") + " changed"
	var sub []string
	if s.AppsAdded > 0 {
		sub = append(sub, fmt.Sprintf("%d added", s.AppsAdded))
	}
	if s.AppsRemoved > 0 {
		sub = append(sub, fmt.Sprintf("%d removed", s.AppsRemoved))
	}
	if len(sub) > 0 {
		apps += " (" + strings.Join(sub, ", ") + ")"
	}
	parts := []string{
		apps,
		plural(s.ObjectsAdded, "object", "objects") + " added",
		fmt.Sprintf("%d removed", s.ObjectsRemoved),
		fmt.Sprintf("%d changed", s.ObjectsChanged),
	}
	if n := s.FilesAdded + s.FilesRemoved + s.FilesChanged; n > 0 {
		parts = append(parts, plural(n, "other file", "other files")+" changed")
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Equal says whether the bundles deploy the same thing: no stack, app,
// object or file changed. The version of galley that built them does not
// count.
func (r *Result) Equal() bool {
	return len(r.Stack) == 0 && len(r.Sections) == 0
}

// Diff compares bundle a with bundle b. It fails only on a bundle.json
// that is present but unreadable; files that are not Kubernetes objects
// are compared as files.
func Diff(a, b *bundles.Tree) (*Result, error) {
	ia, err := readIndex(a)
	if err != nil {
		return nil, fmt.Errorf("first bundle: %w", err)
	}
	ib, err := readIndex(b)
	if err != nil {
		return nil, fmt.Errorf("second bundle: %w", err)
	}
	r := &Result{Stack: []FieldChange{}, Sections: []*Section{}}
	if ia != nil {
		r.From = &ia.Stack
	}
	if ib != nil {
		r.To = &ib.Stack
	}
	r.Stack = append(r.Stack, diffEntries(stackEntry(ia), stackEntry(ib))...)

	sa, sb := split(a), split(b)
	for _, k := range sortedKeys(sa, sb) {
		if s := diffSection(sa[k], sb[k], ia, ib); s != nil {
			r.Sections = append(r.Sections, s)
		}
	}
	slices.SortFunc(r.Sections, func(x, y *Section) int {
		if c := rank(x.Kind) - rank(y.Kind); c != 0 {
			return c
		}
		return strings.Compare(x.Path, y.Path)
	})
	r.Summary = summarize(r.Sections)
	return r, nil
}

func readIndex(t *bundles.Tree) (*bundles.Index, error) {
	if _, ok := t.Get(bundles.IndexPath); !ok {
		return nil, nil
	}
	return bundles.ReadIndex(t)
}

func rank(kind string) int {
	switch kind {
	case KindApp, KindJob:
		return 0
	case KindArgoCD:
		return 1
	case KindFlux:
		return 2
	case KindMonitoring:
		return 3
	case KindTerraform:
		return 4
	}
	return 5
}

// sectionFiles are the files of one section of one bundle.
type sectionFiles struct {
	kind, name, path string
	files            []bundles.File
}

// split groups a tree's files by section, keyed by section path. The
// index is not a section: Diff reads it separately.
func split(t *bundles.Tree) map[string]*sectionFiles {
	out := map[string]*sectionFiles{}
	for _, f := range t.Files() {
		if f.Path == bundles.IndexPath {
			continue
		}
		kind, name, dir := KindOther, "", ""
		if top, rest, ok := strings.Cut(f.Path, "/"); ok {
			kind, name, dir = KindOther, top, top
			switch top {
			case bundles.AppsDir:
				if app, _, ok := strings.Cut(rest, "/"); ok {
					kind, name, dir = KindApp, app, bundles.AppDir(app)
				}
			case KindArgoCD, KindFlux, KindMonitoring, KindTerraform:
				kind = top
			}
		}
		s := out[dir]
		if s == nil {
			s = &sectionFiles{kind: kind, name: name, path: dir}
			out[dir] = s
		}
		s.files = append(s.files, f)
	}
	return out
}

// diffSection compares one section of the two bundles; nil when nothing
// changed.
func diffSection(a, b *sectionFiles, ia, ib *bundles.Index) *Section {
	ref := b
	status := Changed
	switch {
	case a == nil:
		status = Added
		a = &sectionFiles{}
	case b == nil:
		status = Removed
		ref = a
		b = &sectionFiles{}
	}
	s := &Section{Kind: ref.kind, Name: ref.name, Path: ref.path, Status: status}
	if s.Kind == KindApp {
		ea, eb := appEntry(ia, s.Name), appEntry(ib, s.Name)
		if eb.job || eb.entry == nil && ea.job {
			s.Kind = KindJob
		}
		s.Chart = chartChange(ea.chart, eb.chart)
		s.Fields = diffEntries(ea.entry, eb.entry)
	}

	objsA, filesA := classify(a)
	objsB, filesB := classify(b)
	for _, k := range sortedKeys(objsA, objsB) {
		oa, ob := objsA[k], objsB[k]
		switch {
		case oa == nil:
			s.Objects = append(s.Objects, ob.change(Added, nil))
		case ob == nil:
			s.Objects = append(s.Objects, oa.change(Removed, nil))
		default:
			if fields := diffObject(oa.body, ob.body); len(fields) > 0 {
				s.Objects = append(s.Objects, ob.change(Changed, fields))
			}
		}
	}
	// A file that is not an object where objects belong is listed, not
	// shown: it may be a Secret that failed to parse.
	detail := s.Kind == KindTerraform || s.Kind == KindOther
	for _, p := range sortedKeys(filesA, filesB) {
		if fc, ok := diffFile(p, filesA[p], filesB[p], detail); ok {
			s.Files = append(s.Files, fc)
		}
	}
	if status == Changed && s.Chart == nil && len(s.Fields) == 0 && len(s.Objects) == 0 && len(s.Files) == 0 {
		return nil
	}
	return s
}

// object is one Kubernetes object of a bundle.
type object struct {
	apiVersion, kind, namespace, name string
	file                              string
	body                              map[string]any
}

func (o *object) change(st Status, fields []FieldChange) ObjectChange {
	return ObjectChange{
		Status: st, APIVersion: o.apiVersion, Kind: o.kind, Namespace: o.namespace, Name: o.name,
		File: o.file, Fields: fields,
	}
}

// key identifies an object within its section by kind, namespace, name
// and group, in the order objects are listed. The version is left out on
// purpose.
func (o *object) key() string {
	group := ""
	if i := strings.LastIndex(o.apiVersion, "/"); i >= 0 {
		group = o.apiVersion[:i]
	}
	// NUL sorts before every character of a name: "a" before "a2".
	return o.kind + "\x00" + o.namespace + "\x00" + o.name + "\x00" + group
}

// classify splits a section's files into Kubernetes objects, by key, and
// other files, by path. Terraform files are never objects.
func classify(s *sectionFiles) (map[string]*object, map[string][]byte) {
	objs, files := map[string]*object{}, map[string][]byte{}
	for _, f := range s.files {
		var docs []*object
		if s.kind != KindTerraform && isYAMLName(f.Path) {
			docs = parseObjects(f)
		}
		if docs == nil {
			files[f.Path] = f.Data
			continue
		}
		for _, o := range docs {
			k := o.key()
			if _, dup := objs[k]; dup {
				// Two files with one object: keep both, told apart
				// by file, rather than lose one.
				k += "\x00" + f.Path
			}
			objs[k] = o
		}
	}
	return objs, files
}

func isYAMLName(p string) bool {
	return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")
}

// parseObjects decodes every document of a file as Kubernetes decodes it
// (YAML to JSON, numbers kept exact); nil if any document is not an
// object with apiVersion, kind and metadata.name.
func parseObjects(f bundles.File) []*object {
	var out []*object
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(f.Data)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil
		}
		v, err := decodeYAML(doc)
		if err != nil {
			return nil
		}
		if v == nil {
			continue // an empty document
		}
		body, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		o := &object{file: f.Path, body: body}
		o.apiVersion, _ = body["apiVersion"].(string)
		o.kind, _ = body["kind"].(string)
		md, _ := body["metadata"].(map[string]any)
		o.name, _ = md["name"].(string)
		o.namespace, _ = md["namespace"].(string)
		if o.apiVersion == "" || o.kind == "" || o.name == "" {
			return nil
		}
		out = append(out, o)
	}
	return out
}

// decodeYAML decodes YAML (or JSON) into JSON values, with numbers as
// json.Number so that 1 and 1.0 and large integers stay what they were.
func decodeYAML(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// diffFile compares a file that is not a Kubernetes object; with detail,
// it says what changed in it.
func diffFile(p string, a, b []byte, detail bool) (FileChange, bool) {
	switch {
	case a == nil:
		return FileChange{Path: p, Status: Added}, true
	case b == nil:
		return FileChange{Path: p, Status: Removed}, true
	case bytes.Equal(a, b):
		return FileChange{}, false
	}
	fc := FileChange{Path: p, Status: Changed}
	if !detail {
		return fc, true
	}
	if isYAMLName(p) {
		va, errA := decodeYAML(a)
		vb, errB := decodeYAML(b)
		if errA == nil && errB == nil {
			fc.Fields = diffValues(va, vb)
			if len(fc.Fields) == 0 {
				return FileChange{}, false // formatting only
			}
			return fc, true
		}
	}
	if !isText(a) || !isText(b) {
		fc.Binary = true
		return fc, true
	}
	fc.Diff = strings.Join(unified(splitLines(string(a)), splitLines(string(b)), 3), "\n")
	return fc, true
}

// appIndex is what bundle.json says about one app or job.
type appIndex struct {
	job   bool
	chart *bundles.IndexChart
	// entry holds the fields compared as Section.Fields.
	entry map[string]any
}

func appEntry(x *bundles.Index, name string) appIndex {
	if x == nil {
		return appIndex{}
	}
	for _, a := range x.Apps {
		if a.Name == name {
			c := a.Chart
			return appIndex{chart: &c, entry: map[string]any{
				"namespace": a.Namespace, "syncWave": a.SyncWave, "dependsOn": a.DependsOn,
			}}
		}
	}
	for _, j := range x.Jobs {
		if j.Name == name {
			return appIndex{job: true, entry: map[string]any{
				"kind": j.Kind, "namespace": j.Namespace, "schedule": j.Schedule, "syncWave": j.SyncWave, "dependsOn": j.DependsOn,
			}}
		}
	}
	return appIndex{}
}

func stackEntry(x *bundles.Index) map[string]any {
	if x == nil {
		return nil
	}
	m, _ := normalize(x.Stack).(map[string]any)
	return m
}

// diffEntries compares two flat records from bundle.json; a missing
// record (an added or removed app) has no field changes of its own.
func diffEntries(a, b map[string]any) []FieldChange {
	if a == nil || b == nil {
		return nil
	}
	// Through JSON, so that ints and slices compare as decoded values do.
	na, nb := normalize(a), normalize(b)
	return diffValues(na, nb)
}

func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	out, err := decodeYAML(b)
	if err != nil {
		return v
	}
	return out
}

func chartChange(a, b *bundles.IndexChart) *ChartChange {
	switch {
	case a == nil && b == nil:
		return nil
	case a != nil && b != nil && reflect.DeepEqual(*a, *b):
		return nil
	}
	return &ChartChange{From: a, To: b}
}

func summarize(sections []*Section) Summary {
	var s Summary
	for _, sec := range sections {
		if sec.Kind == KindApp || sec.Kind == KindJob {
			s.Apps++
			switch sec.Status {
			case Added:
				s.AppsAdded++
			case Removed:
				s.AppsRemoved++
			}
		}
		if sec.Chart != nil {
			s.Charts++
		}
		for _, o := range sec.Objects {
			switch o.Status {
			case Added:
				s.ObjectsAdded++
			case Removed:
				s.ObjectsRemoved++
			case Changed:
				s.ObjectsChanged++
			}
		}
		for _, f := range sec.Files {
			switch f.Status {
			case Added:
				s.FilesAdded++
			case Removed:
				s.FilesRemoved++
			case Changed:
				s.FilesChanged++
			}
		}
	}
	return s
}

func sortedKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
