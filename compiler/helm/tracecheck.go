package helm

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// A Nondeterministic is one place where a render's output would change from
// one build to the next.
type Nondeterministic struct {
	// Object is "Kind/name" of the document it is in; Source the template
	// that document came from. Both are empty for a refused value that
	// was not found in the output.
	Object string
	Source string
	// Field is the readable path of the field holding it
	// (spec.template.spec.containers[name=web].env[name=KEY].value), or
	// empty when it is outside any field (a comment).
	Field string
	// Func is the function that produced it, Where its call (file:line),
	// Via the functions it went through on its way.
	Func  string
	Where string
	Via   []string
	// ValuesKeys are the chart values read in the call's pipeline: setting
	// one of them usually makes the chart use it instead.
	ValuesKeys []string
	// Refused says why a value was refused without being found in the
	// output ("reads the clock", "becomes a bool ...").
	Refused string
}

// NondeterminismError is what Render returns, along with the documents,
// when the output depends on values that change between renders.
type NondeterminismError struct {
	Chart string
	Found []Nondeterministic
}

func (e *NondeterminismError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chart %s output is not deterministic:", e.Chart)
	for _, f := range e.Found {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

func (f Nondeterministic) String() string {
	var b strings.Builder
	if f.Refused != "" {
		fmt.Fprintf(&b, "%s at %s", f.Func, f.Where)
		if len(f.Via) > 0 {
			fmt.Fprintf(&b, " (then %s)", strings.Join(f.Via, ", "))
		}
		fmt.Fprintf(&b, " %s", f.Refused)
	} else {
		field := f.Field
		if field == "" {
			field = "text outside any field"
		}
		fmt.Fprintf(&b, "%s %s: from %s at %s", f.Object, field, f.Func, f.Where)
		if len(f.Via) > 0 {
			fmt.Fprintf(&b, " (then %s)", strings.Join(f.Via, ", "))
		}
	}
	if len(f.ValuesKeys) > 0 {
		fmt.Fprintf(&b, "; the template reads %s there", strings.Join(f.ValuesKeys, ", "))
	}
	return b.String()
}

// check looks for traced values in the output and lists them with the
// values the tracer refused.
func (tr *tracer) check(chartName string, docs []Document) *NondeterminismError {
	var found []Nondeterministic
	seen := map[string]bool{}
	add := func(n Nondeterministic) {
		k := n.String()
		if !seen[k] {
			seen[k] = true
			found = append(found, n)
		}
	}
	for _, p := range tr.problems {
		for _, c := range p.calls {
			n := tr.describeCall(c, p.via)
			n.Refused = p.reason
			add(n)
		}
	}
	if len(tr.taints) > 0 {
		for _, d := range docs {
			text := string(d.YAML)
			if len(tr.findIn(text, nil)) == 0 {
				continue
			}
			var body any
			obj := d.Source
			inField := false
			if err := yaml.Unmarshal(d.YAML, &body); err == nil {
				if m, ok := body.(map[string]any); ok {
					kind, _ := m["kind"].(string)
					md, _ := m["metadata"].(map[string]any)
					name, _ := md["name"].(string)
					obj = kind + "/" + name
				}
				walkScalars(body, "", func(path, s string) {
					for _, t := range tr.findIn(s, nil) {
						for _, c := range tr.taints[t].calls {
							n := tr.describeCall(c, tr.taints[t].via)
							n.Object, n.Source, n.Field = obj, d.Source, path
							add(n)
							inField = true
						}
					}
				})
			}
			if !inField {
				for _, t := range tr.findIn(text, nil) {
					for _, c := range tr.taints[t].calls {
						n := tr.describeCall(c, tr.taints[t].via)
						n.Object, n.Source = obj, d.Source
						add(n)
					}
				}
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return &NondeterminismError{Chart: chartName, Found: found}
}

func (tr *tracer) describeCall(c int, via []string) Nondeterministic {
	cl := tr.calls[c]
	n := Nondeterministic{Func: cl.fn, Where: cl.site.where(), Via: via}
	if cl.site != nil {
		n.ValuesKeys = valuesKeys(cl.site)
	}
	return n
}

var valuesRef = regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)`)

// valuesKeys lists the .Values keys a site's pipeline reads, as keys of
// the top chart's values (a subchart's are under its name).
func valuesKeys(s *site) []string {
	prefix := ""
	if parts := strings.Split(s.Chart, "/charts/"); len(parts) > 1 {
		prefix = strings.Join(parts[1:], ".") + "."
	}
	var keys []string
	for _, m := range valuesRef.FindAllStringSubmatch(s.Expr, -1) {
		k := prefix + strings.TrimPrefix(m[1], ".")
		if !contains(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// walkScalars calls fn with the readable path and text of every scalar
// and map key in v.
func walkScalars(v any, path string, fn func(path, s string)) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := joinField(path, k)
			fn(p, k)
			walkScalars(t[k], p, fn)
		}
	case []any:
		for i, e := range t {
			walkScalars(e, path+listIndex(e, i), fn)
		}
	case string:
		fn(path, t)
	case float64:
		fn(path, strconv.FormatFloat(t, 'f', -1, 64))
	case int64:
		fn(path, strconv.FormatInt(t, 10))
	case int:
		fn(path, strconv.Itoa(t))
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinField(path, k string) string {
	if !plainKey.MatchString(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// listIndex names a list element by its name (env, containers, ports,
// volumes) when it has one: indexes shift when a chart changes.
func listIndex(e any, i int) string {
	if m, ok := e.(map[string]any); ok {
		for _, k := range []string{"name", "key", "mountPath"} {
			if s, ok := m[k].(string); ok && s != "" {
				return "[" + k + "=" + s + "]"
			}
		}
	}
	return "[" + strconv.Itoa(i) + "]"
}
