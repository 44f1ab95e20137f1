// Package crdvalidate checks Kubernetes objects against the OpenAPI v3
// schema of a CustomResourceDefinition, offline, the way the API server
// would on create: schema validation with kube-openapi's validator (the one
// the API server uses for custom resources), unknown fields rejected as
// `kubectl apply --validate=strict` rejects them, and the object metadata
// checks every object gets.
//
// It does not run CEL rules (x-kubernetes-validations), apply defaults or
// check list-type/map-type uniqueness; those need the API server's own
// packages, whose CEL dependencies galley does not carry.
package crdvalidate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

// ErrNotCRD is returned (wrapped) by New for a document that is not an
// apiextensions.k8s.io/v1 CustomResourceDefinition.
var ErrNotCRD = errors.New("not a CustomResourceDefinition")

// Validator checks objects against the served versions of one
// CustomResourceDefinition. It is safe for concurrent use.
type Validator struct {
	name       string // of the CRD
	group      string
	kind       string
	namespaced bool
	versions   map[string]*spec.Schema // served versions only
}

type crd struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Group string `json:"group"`
		Scope string `json:"scope"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Served bool   `json:"served"`
			Schema *struct {
				OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

// New reads one apiextensions.k8s.io/v1 CustomResourceDefinition (YAML or
// JSON) and returns a Validator for the objects it defines.
func New(crdYAML []byte) (*Validator, error) {
	j, err := yaml.YAMLToJSON(crdYAML)
	if err != nil {
		return nil, fmt.Errorf("reading CustomResourceDefinition: %w", err)
	}
	var c crd
	if err := json.Unmarshal(j, &c); err != nil {
		return nil, fmt.Errorf("reading CustomResourceDefinition: %w", err)
	}
	if c.APIVersion != "apiextensions.k8s.io/v1" || c.Kind != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%w: want apiextensions.k8s.io/v1 CustomResourceDefinition, got %q %q", ErrNotCRD, c.APIVersion, c.Kind)
	}
	if c.Spec.Group == "" || c.Spec.Names.Kind == "" {
		return nil, fmt.Errorf("CustomResourceDefinition %s: spec.group and spec.names.kind are required", c.Metadata.Name)
	}
	v := &Validator{
		name:       c.Metadata.Name,
		group:      c.Spec.Group,
		kind:       c.Spec.Names.Kind,
		namespaced: c.Spec.Scope != "Cluster",
		versions:   map[string]*spec.Schema{},
	}
	for _, ver := range c.Spec.Versions {
		if !ver.Served {
			continue
		}
		s := &spec.Schema{}
		if ver.Schema != nil && len(ver.Schema.OpenAPIV3Schema) > 0 {
			if err := json.Unmarshal(ver.Schema.OpenAPIV3Schema, s); err != nil {
				return nil, fmt.Errorf("CustomResourceDefinition %s: version %s: reading openAPIV3Schema: %w", v.name, ver.Name, err)
			}
			if err := walk(s, convert); err != nil {
				return nil, fmt.Errorf("CustomResourceDefinition %s: version %s: %w", v.name, ver.Name, err)
			}
		}
		v.versions[ver.Name] = s
	}
	if len(v.versions) == 0 {
		return nil, fmt.Errorf("CustomResourceDefinition %s: serves no version", v.name)
	}
	return v, nil
}

// Group returns the API group of the objects v checks.
func (v *Validator) Group() string { return v.group }

// Kind returns the kind of the objects v checks.
func (v *Validator) Kind() string { return v.kind }

// Error lists what is wrong with one object.
type Error struct {
	Object string   // "<kind>/<name>"
	Causes []string // "<field path>: <problem>", sorted
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Object, strings.Join(e.Causes, "; "))
}

// Validate checks one object (YAML or JSON). A schema violation gives an
// *Error listing every cause.
func (v *Validator) Validate(obj []byte) error {
	j, err := yaml.YAMLToJSON(obj)
	if err != nil {
		return fmt.Errorf("reading object: %w", err)
	}
	o, err := decode(j)
	if err != nil {
		return fmt.Errorf("reading object: %w", err)
	}
	av, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	md, _ := o["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	e := &Error{Object: kind + "/" + name}

	group, version, _ := strings.Cut(av, "/")
	if kind != v.kind || group != v.group {
		return fmt.Errorf("%s: apiVersion %q kind %q is not defined by CustomResourceDefinition %s (%s %s)", e.Object, av, kind, v.name, v.group, v.kind)
	}
	s, ok := v.versions[version]
	if !ok {
		return fmt.Errorf("%s: version %q is not served by CustomResourceDefinition %s (served: %s)", e.Object, version, v.name, strings.Join(slices.Sorted(maps.Keys(v.versions)), ", "))
	}

	e.Causes = append(e.Causes, v.checkMetadata(o["metadata"])...)
	res := validate.NewSchemaValidator(s, nil, "", strfmt.Default).Validate(o)
	for _, err := range res.Errors {
		e.Causes = append(e.Causes, err.Error())
	}
	unknownFields(s, o, "", true, &e.Causes)
	if len(e.Causes) == 0 {
		return nil
	}
	slices.Sort(e.Causes)
	e.Causes = slices.Compact(e.Causes)
	return e
}

// decode reads a JSON object the way the API server does: integral numbers
// become int64, so the schema validator tells integers from numbers.
func decode(j []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	o, ok := numbers(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a YAML mapping, got %T", v)
	}
	return o, nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = numbers(x)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
	}
	return v
}

// ValidateAgainstCRD checks obj against the CustomResourceDefinition
// crdYAML. To check many objects, make one Validator with New.
func ValidateAgainstCRD(crdYAML, obj []byte) error {
	v, err := New(crdYAML)
	if err != nil {
		return err
	}
	return v.Validate(obj)
}

// checkMetadata does what the API server's ObjectMeta validation does for a
// new object, minus what only the server sets.
func (v *Validator) checkMetadata(m any) []string {
	md, ok := m.(map[string]any)
	if !ok {
		return []string{"metadata: Required value"}
	}
	var causes []string
	add := func(field string, msgs []string) {
		for _, msg := range msgs {
			causes = append(causes, "metadata."+field+": "+msg)
		}
	}
	str := func(field string) (string, bool) {
		x, present := md[field]
		s, isStr := x.(string)
		if present && !isStr {
			causes = append(causes, fmt.Sprintf("metadata.%s: must be a string", field))
		}
		return s, present
	}
	name, _ := str("name")
	if name == "" {
		if g, _ := str("generateName"); g == "" {
			causes = append(causes, "metadata.name: Required value")
		}
	} else {
		add("name", validation.IsDNS1123Subdomain(name))
	}
	ns, hasNS := str("namespace")
	switch {
	case v.namespaced && ns != "":
		add("namespace", validation.IsDNS1123Label(ns))
	case !v.namespaced && hasNS && ns != "":
		causes = append(causes, "metadata.namespace: must be empty: "+v.kind+" is cluster-scoped")
	}
	for _, field := range []string{"labels", "annotations"} {
		x, present := md[field]
		if !present || x == nil {
			continue
		}
		kv, ok := x.(map[string]any)
		if !ok {
			causes = append(causes, fmt.Sprintf("metadata.%s: must be a map of strings", field))
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(kv)) {
			add(field, prefix(k, validation.IsQualifiedName(k)))
			val, isStr := kv[k].(string)
			if !isStr {
				causes = append(causes, fmt.Sprintf("metadata.%s[%s]: must be a string", field, k))
				continue
			}
			if field == "labels" {
				add(field, prefix(k, validation.IsValidLabelValue(val)))
			}
		}
	}
	return causes
}

func prefix(k string, msgs []string) []string {
	for i := range msgs {
		msgs[i] = fmt.Sprintf("%q: %s", k, msgs[i])
	}
	return msgs
}

// supportedFormats are the string formats the API server checks; it drops
// every other format from a CRD schema (apiextensions-apiserver
// pkg/apiserver/validation/formats.go).
var supportedFormats = map[string]bool{
	"bsonobjectid": true, "uri": true, "email": true, "hostname": true, "ipv4": true,
	"ipv6": true, "cidr": true, "mac": true, "uuid": true, "uuid3": true, "uuid4": true,
	"uuid5": true, "isbn": true, "isbn10": true, "isbn13": true, "creditcard": true,
	"ssn": true, "hexcolor": true, "rgbcolor": true, "byte": true, "password": true,
	"date": true, "duration": true, "datetime": true,
	"k8s-short-name": true, "k8s-long-name": true,
}

// convert does to one schema node what the API server's conversion from a
// CRD schema does before validating: int-or-string becomes two types, and
// formats it does not support are dropped.
func convert(s *spec.Schema) error {
	if b, _ := s.Extensions.GetBool("x-kubernetes-int-or-string"); b {
		s.Type = spec.StringOrArray{"integer", "string"}
	}
	if s.Ref.String() != "" {
		return fmt.Errorf("schema references ($ref) are not allowed in a CustomResourceDefinition")
	}
	if s.Format == "" {
		return nil
	}
	t := ""
	if len(s.Type) == 1 {
		t = s.Type[0]
	}
	switch t {
	case "", "string":
		if !supportedFormats[strings.ReplaceAll(s.Format, "-", "")] && !supportedFormats[s.Format] {
			s.Format = ""
		}
	case "integer":
		if s.Format != "int32" && s.Format != "int64" {
			s.Format = ""
		}
	case "number":
		if s.Format != "float" && s.Format != "double" {
			s.Format = ""
		}
	default:
		s.Format = ""
	}
	return nil
}

// walk calls f on s and every schema below it.
func walk(s *spec.Schema, f func(*spec.Schema) error) error {
	if s == nil {
		return nil
	}
	if err := f(s); err != nil {
		return err
	}
	for _, m := range []map[string]spec.Schema{s.Properties, s.PatternProperties, s.Definitions} {
		for k, c := range m {
			if err := walk(&c, f); err != nil {
				return err
			}
			m[k] = c
		}
	}
	for _, l := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range l {
			if err := walk(&l[i], f); err != nil {
				return err
			}
		}
	}
	if err := walk(s.Not, f); err != nil {
		return err
	}
	if s.AdditionalProperties != nil {
		if err := walk(s.AdditionalProperties.Schema, f); err != nil {
			return err
		}
	}
	if s.Items != nil {
		if err := walk(s.Items.Schema, f); err != nil {
			return err
		}
		for i := range s.Items.Schemas {
			if err := walk(&s.Items.Schemas[i], f); err != nil {
				return err
			}
		}
	}
	return nil
}

// unknownFields reports the fields of v that s does not declare, where the
// API server would prune them (and strict field validation reject them):
// objects whose schema neither preserves unknown fields nor allows
// additional properties. apiVersion, kind and metadata are always allowed
// at the root and in embedded resources.
func unknownFields(s *spec.Schema, v any, path string, root bool, causes *[]string) {
	if s == nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		embedded, _ := s.Extensions.GetBool("x-kubernetes-embedded-resource")
		preserve, _ := s.Extensions.GetBool("x-kubernetes-preserve-unknown-fields")
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := joinPath(path, k)
			if (root || embedded) && (k == "apiVersion" || k == "kind" || k == "metadata") {
				// The API server checks these itself (checkMetadata
				// here), whatever the schema says.
				continue
			}
			if c, ok := s.Properties[k]; ok {
				unknownFields(&c, v[k], p, false, causes)
				continue
			}
			if ap := s.AdditionalProperties; ap != nil {
				if ap.Schema != nil {
					unknownFields(ap.Schema, v[k], p, false, causes)
				}
				if ap.Schema != nil || ap.Allows {
					continue
				}
			}
			if preserve {
				continue
			}
			*causes = append(*causes, p+": unknown field")
		}
	case []any:
		if s.Items == nil || s.Items.Schema == nil {
			return
		}
		for i, x := range v {
			unknownFields(s.Items.Schema, x, fmt.Sprintf("%s[%d]", path, i), false, causes)
		}
	}
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
