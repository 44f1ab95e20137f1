package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/internal/yaml11"
)

// Parse decodes one YAML document the way kubectl, Argo CD and Flux
// do (YAML to JSON), and refuses anything that is not a Kubernetes object:
// Flux fails on such files in an app directory.
func Parse(doc []byte, source string) (*Object, error) {
	// The body is what sigs.k8s.io/yaml.YAMLToJSON then a json.Decoder
	// with UseNumber give, built straight from yaml.v2's values: printing
	// and re-reading the JSON was a third of the cost of parsing. Anything
	// jsonValue does not convert exactly, and every error, takes the JSON
	// way.
	var y any
	if err := yaml2.Unmarshal(doc, &y); err == nil {
		if y == nil {
			return nil, nil // an empty document
		}
		if _, isMap := y.(map[any]any); isMap {
			if body, ok := jsonValue(y); ok {
				return newObject(body.(map[string]any), source)
			}
		}
	}
	return parseViaJSON(doc, source)
}

// parseViaJSON is the reference decoding, through JSON text.
func parseViaJSON(doc []byte, source string) (*Object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", source, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil // an empty document
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: not a Kubernetes object (a YAML mapping is expected): %w", source, err)
	}
	return newObject(body, source)
}

func newObject(body map[string]any, source string) (*Object, error) {
	o := &Object{Source: source, Body: body}
	o.APIVersion, _ = body["apiVersion"].(string)
	o.Kind, _ = body["kind"].(string)
	meta, _ := body["metadata"].(map[string]any)
	o.Name, _ = meta["name"].(string)
	o.Namespace, _ = meta["namespace"].(string)
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, fmt.Errorf("%s: not a Kubernetes object: apiVersion, kind and metadata.name are required", source)
	}
	return o, nil
}

// jsonValue converts what yaml.v2 decodes into what a json.Decoder with
// UseNumber reads from sigs.k8s.io/yaml's JSON for it: maps with string
// keys, lists, strings, booleans, nulls, and numbers as json.Number printed
// as encoding/json prints them. ok is false for what it does not convert
// exactly (non-string keys, strings that are not UTF-8, NaN and infinities,
// other types).
func jsonValue(v any) (any, bool) {
	switch v := v.(type) {
	case nil, bool:
		return v, true
	case string:
		return v, utf8.ValidString(v)
	case int:
		return json.Number(strconv.Itoa(v)), true
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), true
	case uint64:
		return json.Number(strconv.FormatUint(v, 10)), true
	case float64:
		return jsonFloat(v)
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok || !utf8.ValidString(ks) {
				return nil, false
			}
			c, ok := jsonValue(e)
			if !ok {
				return nil, false
			}
			m[ks] = c
		}
		return m, true
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			c, ok := jsonValue(e)
			if !ok {
				return nil, false
			}
			l[i] = c
		}
		return l, true
	}
	return nil, false
}

// jsonFloat prints f as encoding/json does.
func jsonFloat(f float64) (any, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return json.Number(b), true
}

// YAML renders the object with sorted keys, so the bytes depend only on
// the object. The bytes are those of sigs.k8s.io/yaml.JSONToYAML on the
// object's JSON; when yamlReady says the round trip changes nothing,
// yaml.v2 prints the object directly, without printing and re-parsing the
// JSON, which was most of the cost of a build from the render cache.
//
// Strings that YAML 1.1 readers would not read back as strings (`=`,
// `<<`, ...) are then quoted (yaml11.Quote); yaml11Clean finds, while
// walking the body, whether there are any, so most objects skip the
// re-parse that quoting needs.
func (o *Object) YAML() ([]byte, error) {
	if o.yaml != nil {
		return o.yaml, nil
	}
	if yamlReady(o.Body) {
		if y, err := yaml2.Marshal(o.Body); err == nil {
			if yaml11Clean(o.Body) {
				return y, nil
			}
			return o.quote(y)
		}
	}
	return o.yamlViaJSON()
}

// yamlViaJSON is the reference encoding: the object as JSON, read back by
// yaml.v2 (which picks int or float for each number) and printed, with
// YAML 1.1's exceptions quoted.
func (o *Object) yamlViaJSON() ([]byte, error) {
	js, err := json.Marshal(o.Body)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
	}
	return o.quote(y)
}

func (o *Object) quote(y []byte) ([]byte, error) {
	q, err := yaml11.Quote(y)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
	}
	return q, nil
}

// yaml11Clean reports whether yaml.v2 prints every string of v (keys
// too) so that a YAML 1.1 reader reads it back unchanged.
func yaml11Clean(v any) bool {
	switch v := v.(type) {
	case string:
		return yaml11.Safe(v)
	case json.Number:
		// yaml.v2 prints 1e6 as 1e+06, which YAML 1.1 reads as a string.
		return !strings.ContainsAny(string(v), "eE")
	case map[string]any:
		for k, e := range v {
			if !yaml11.Safe(k) || !yaml11Clean(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !yaml11Clean(e) {
				return false
			}
		}
	}
	return true
}

// Print prints the object once and keeps the bytes: later calls of YAML
// return them without printing again.
func (o *Object) Print() ([]byte, error) {
	y, err := o.YAML()
	if err != nil {
		return nil, err
	}
	o.yaml = y
	return y, nil
}

// yamlReady reports whether yaml.v2 prints v as it prints what it reads
// back from v's JSON encoding: maps with string keys (yaml.v2 sorts map
// keys the same whatever their Go type), lists, strings, booleans, nulls
// and JSON numbers that yaml.v2 prints as it would resolve them. It is
// false for anything else (other Go types, numbers json.Marshal refuses or
// that resolve differently, strings with characters yaml.v2 refuses
// unescaped, a "<<" merge key): the caller then takes the JSON way, which
// gives the same bytes or the same error as before.
func yamlReady(v any) bool {
	switch v := v.(type) {
	case nil, bool:
		return true
	case string:
		return yamlSafeString(v)
	case json.Number:
		return yamlSafeNumber(string(v))
	case map[string]any:
		if v == nil {
			return false // JSON null, but yaml.v2 prints {}
		}
		for k, e := range v {
			if k == "<<" || !yamlSafeString(k) || !yamlReady(e) {
				return false
			}
		}
		return true
	case []any:
		if v == nil {
			return false // JSON null, but yaml.v2 prints []
		}
		for _, e := range v {
			if !yamlReady(e) {
				return false
			}
		}
		return true
	}
	return false
}

// yamlSafeNumber reports whether s is a JSON number that yaml.v2 prints,
// as a json.Number, the way it prints it after resolving it as a plain
// scalar. yaml.v2 prints a json.Number as its Int64, else its Float64,
// which is what resolving gives, except for integers beyond int64 (which
// resolve to uint64) and floats beyond float64 (which resolve to strings).
func yamlSafeNumber(s string) bool {
	if !isJSONNumber(s) {
		return false
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true
	}
	if !strings.ContainsAny(s, ".eE") {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isJSONNumber is encoding/json's check of a json.Number.
func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

// yamlSafeString reports whether s survives json.Marshal then yaml.v2 as
// itself: valid UTF-8 (json.Marshal replaces the rest) without the
// characters json.Marshal leaves unescaped but yaml.v2 refuses in its input
// (DEL, C1 controls but NEL, U+FFFE, U+FFFF) or might treat specially (BOM).
func yamlSafeString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x7f {
			return yamlSafeRunes(s)
		}
	}
	return true
}

func yamlSafeRunes(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfeff, r == 0xfffe, r == 0xffff:
			return false
		}
	}
	return true
}
