package stack

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// readValuesFiles reads and decodes an app's values files, so that vet
// finds a file that is outside the root, missing, not YAML or not a
// mapping, as build would, and build renders from what was checked.
func (s *Stack) readValuesFiles(a *App) Errors {
	var errs Errors
	a.fileValues = make([]map[string]any, 0, len(a.ValuesFiles))
	for i, f := range a.ValuesFiles {
		field := fmt.Sprintf("valuesFiles[%d]", i)
		if e := s.checkRoot(a, field, "values file", f); e != nil {
			errs = append(errs, e)
			continue
		}
		b, err := os.ReadFile(s.Path(f))
		if err != nil {
			if os.IsNotExist(err) {
				errs = append(errs, a.errAt(field, "values file %s not found (paths are relative to the stack directory %s)", f, s.Dir))
			} else {
				errs = append(errs, a.errAt(field, "reading values file: %v", err))
			}
			continue
		}
		m, err := ParseValuesFile(f, b)
		if err != nil {
			errs = append(errs, a.errAt(field, "%v", err))
			continue
		}
		a.fileValues = append(a.fileValues, m)
	}
	return errs
}

// ParseValuesFile decodes a values file named name (for messages) the way
// helm reads one given with -f: YAML, numbers as float64 through JSON, and
// a mapping at the top (an empty file is an empty mapping).
func ParseValuesFile(name string, data []byte) (map[string]any, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("values file %s is not valid YAML: %w", name, err)
	}
	if doc == nil {
		return map[string]any{}, nil
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("values file %s must be a YAML mapping (key: value), not a %s", name, yamlKind(doc))
	}
	return m, nil
}

// FileValues are the app's values files, in order, each decoded by Load.
func (a *App) FileValues() []map[string]any { return a.fileValues }

func yamlKind(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, int, int64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
