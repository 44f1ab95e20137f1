// Package provenance writes and reads the SLSA v1 provenance galley attaches
// to a bundle: an in-toto statement whose subject is the bundle manifest and
// whose predicate answers, from the registry alone, "which stack commit,
// which chart digests, which galley built this release?".
//
// It is built from the bundle itself (manifest annotations and bundle.json),
// never from the build machine, so the same bundle always gets the same
// provenance and anyone holding the bundle can check it matches.
package provenance

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/mod/sumdb/dirhash"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/galley-dev/galley/bundles"
)

const (
	// PredicateType is SLSA provenance v1, what `cosign verify-attestation
	// --type slsaprovenance1` looks for.
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType says how to read the external parameters below.
	BuildType = "https://github.com/galley-dev/galley/buildtypes/bundle/v1"
	// BuilderID names galley as the builder; its version is in
	// builder.version.galley.
	BuilderID = "https://github.com/galley-dev/galley"
)

var (
	// ErrSubject: the provenance is about another manifest.
	ErrSubject = errors.New("provenance subject is another digest")
	// ErrInvalid: not a galley SLSA v1 provenance statement.
	ErrInvalid = errors.New("not a SLSA v1 provenance statement")
)

// Provenance is what galley records, in the form `verify --provenance` and
// `inspect` print it.
type Provenance struct {
	Subject       digest.Digest `json:"subject"`
	Builder       string        `json:"builder"`
	GalleyVersion string        `json:"galleyVersion"`
	Stack         string        `json:"stack"`
	Version       string        `json:"version"`
	Environment   string        `json:"environment,omitempty"`
	Source        string        `json:"source,omitempty"`
	Revision      string        `json:"revision,omitempty"`
	Charts        []Dependency  `json:"charts"`
	Images        []Dependency  `json:"images"`
	Modules       []Dependency  `json:"terraformModules"`
}

// Dependency is one resolved dependency.
type Dependency struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	URI     string `json:"uri,omitempty"`
	// Digest is "<alg>:<hex>", e.g. sha256:<hex> or dirHash:<hex>;
	// "" when none is known (an image built without --resolve-images).
	Digest string `json:"digest,omitempty"`
}

// Options set what the bundle does not say itself.
type Options struct {
	// GalleyVersion is used when the bundle has no
	// dev.galley.galley-version annotation.
	GalleyVersion string
}

// Build returns the provenance of b: external parameters from its manifest
// annotations and bundle.json (stack name, version, environment, source,
// revision), resolved dependencies from bundle.json (every chart with its
// digest, every image as resolved, each Terraform module with the Go dirhash
// of its files in the bundle).
func Build(b *bundles.Bundle, o Options) (*Provenance, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b.Manifest, &m); err != nil {
		return nil, fmt.Errorf("provenance: bundle manifest: %w", err)
	}
	tree, err := b.Tree(bundles.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	// A bundle packed by other means than galley's compiler has no
	// bundle.json: its provenance then records what the annotations say
	// and no dependencies. A bundle.json that does not read is an error.
	idx := &bundles.Index{}
	if _, ok := tree.Get(bundles.IndexPath); ok {
		if idx, err = bundles.ReadIndex(tree); err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
	}
	a := m.Annotations
	p := &Provenance{
		Subject:       b.Digest(),
		Builder:       BuilderID,
		GalleyVersion: first(a[bundles.AnnotationGalleyVersion], idx.Galley, o.GalleyVersion),
		Stack:         first(idx.Stack.Name, a[bundles.AnnotationStack], a[ocispec.AnnotationTitle]),
		Version:       first(idx.Stack.Version, a[ocispec.AnnotationVersion]),
		Environment:   first(idx.Stack.Environment, a[bundles.AnnotationEnvironment]),
		Source:        a[ocispec.AnnotationSource],
		Revision:      a[ocispec.AnnotationRevision],
		Charts:        []Dependency{},
		Images:        []Dependency{},
		Modules:       []Dependency{},
	}
	if p.GalleyVersion == "" {
		p.GalleyVersion = "unknown"
	}
	seen := map[string]bool{}
	for _, app := range idx.Apps {
		c := app.Chart
		if c.Name == "" {
			continue
		}
		k := c.Name + "@" + c.Version + "@" + c.Digest
		if seen[k] {
			continue
		}
		seen[k] = true
		p.Charts = append(p.Charts, Dependency{Name: c.Name, Version: c.Version, Digest: c.Digest})
	}
	for _, im := range idx.Images {
		d := Dependency{Name: im, URI: "oci://" + im}
		if i := strings.LastIndex(im, "@"); i > 0 {
			d.Name, d.Digest = im[:i], im[i+1:]
		}
		p.Images = append(p.Images, d)
	}
	for _, tf := range idx.Terraform {
		h, err := dirHash(tree, tf.Path)
		if err != nil {
			return nil, fmt.Errorf("provenance: Terraform module %s: %w", tf.Name, err)
		}
		p.Modules = append(p.Modules, Dependency{Name: tf.Name, URI: "bundle:" + tf.Path, Digest: "dirHash:" + h})
	}
	return p, nil
}

// dirHash is Go's module directory hash (h1) of the files under dir in t,
// hex-encoded: the digest in-toto's digest set knows as "dirHash" (whose
// validator wants hex, not the "h1:<base64>" form go.sum shows).
func dirHash(t *bundles.Tree, dir string) (string, error) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var files []string
	for _, f := range t.Files() {
		if strings.HasPrefix(f.Path, prefix) {
			files = append(files, f.Path)
		}
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no files under %s", dir)
	}
	h1, err := dirhash.Hash1(files, func(name string) (io.ReadCloser, error) {
		b, ok := t.Get(name)
		if !ok {
			return nil, fmt.Errorf("%s: not in the bundle", name)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "h1:"))
	if err != nil {
		return "", fmt.Errorf("dirhash %q: %w", h1, err)
	}
	return hex.EncodeToString(raw), nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Statement encodes p as an in-toto v1 statement with a SLSA v1 predicate,
// in protojson's encoding (as cosign writes statements).
func (p *Provenance) Statement() ([]byte, error) {
	if err := p.Subject.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: subject %q: %w", p.Subject, err)
	}
	ext, err := structpb.NewStruct(map[string]any{
		"stack":       p.Stack,
		"version":     p.Version,
		"environment": p.Environment,
		"source":      p.Source,
		"revision":    p.Revision,
	})
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	var deps []*intotov1.ResourceDescriptor
	add := func(kind string, ds []Dependency) error {
		for _, d := range ds {
			rd := &intotov1.ResourceDescriptor{Name: d.Name, Uri: d.URI}
			if d.Digest != "" {
				alg, val, ok := strings.Cut(d.Digest, ":")
				if !ok {
					return fmt.Errorf("provenance: %s %s: digest %q is not <alg>:<value>", kind, d.Name, d.Digest)
				}
				rd.Digest = map[string]string{alg: val}
			}
			ann := map[string]any{"kind": kind}
			if d.Version != "" {
				ann["version"] = d.Version
			}
			if rd.Annotations, err = structpb.NewStruct(ann); err != nil {
				return err
			}
			deps = append(deps, rd)
		}
		return nil
	}
	for _, g := range []struct {
		kind string
		ds   []Dependency
	}{{"chart", p.Charts}, {"image", p.Images}, {"terraformModule", p.Modules}} {
		if err := add(g.kind, g.ds); err != nil {
			return nil, err
		}
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: p.Builder, Version: map[string]string{"galley": p.GalleyVersion}},
		},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	predJSON, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	var predStruct structpb.Struct
	if err := protojson.Unmarshal(predJSON, &predStruct); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	st := &intotov1.Statement{
		Type: intotov1.StatementTypeUri,
		Subject: []*intotov1.ResourceDescriptor{{
			Name:   first(p.Stack, "bundle"),
			Digest: map[string]string{p.Subject.Algorithm().String(): p.Subject.Encoded()},
		}},
		PredicateType: PredicateType,
		Predicate:     &predStruct,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	b, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return b, nil
}

// Parse reads a provenance statement galley wrote and checks that its
// subject is d. Errors wrap ErrInvalid or ErrSubject and say which field.
func Parse(statement []byte, d digest.Digest) (*Provenance, error) {
	var st intotov1.Statement
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(statement, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if st.GetPredicateType() != PredicateType {
		return nil, fmt.Errorf("%w: predicateType %q, want %q", ErrInvalid, st.GetPredicateType(), PredicateType)
	}
	if len(st.GetSubject()) != 1 {
		return nil, fmt.Errorf("%w: %d subjects, want the bundle alone", ErrInvalid, len(st.GetSubject()))
	}
	subj := st.GetSubject()[0].GetDigest()
	if got := subj[d.Algorithm().String()]; got != d.Encoded() {
		var names []string
		for alg, v := range subj {
			names = append(names, alg+":"+v)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("%w: subject %s, want %s", ErrSubject, strings.Join(names, ", "), d)
	}
	predJSON, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("%w: predicate: %v", ErrInvalid, err)
	}
	var pred slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(predJSON, &pred); err != nil {
		return nil, fmt.Errorf("%w: predicate: %v", ErrInvalid, err)
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ext := pred.GetBuildDefinition().GetExternalParameters().AsMap()
	str := func(k string) string { s, _ := ext[k].(string); return s }
	p := &Provenance{
		Subject:       d,
		Builder:       pred.GetRunDetails().GetBuilder().GetId(),
		GalleyVersion: pred.GetRunDetails().GetBuilder().GetVersion()["galley"],
		Stack:         str("stack"),
		Version:       str("version"),
		Environment:   str("environment"),
		Source:        str("source"),
		Revision:      str("revision"),
		Charts:        []Dependency{},
		Images:        []Dependency{},
		Modules:       []Dependency{},
	}
	for _, rd := range pred.GetBuildDefinition().GetResolvedDependencies() {
		ann := rd.GetAnnotations().AsMap()
		dep := Dependency{Name: rd.GetName(), URI: rd.GetUri()}
		dep.Version, _ = ann["version"].(string)
		for alg, v := range rd.GetDigest() {
			dep.Digest = alg + ":" + v
		}
		switch ann["kind"] {
		case "chart":
			p.Charts = append(p.Charts, dep)
		case "image":
			p.Images = append(p.Images, dep)
		case "terraformModule":
			p.Modules = append(p.Modules, dep)
		}
	}
	return p, nil
}
