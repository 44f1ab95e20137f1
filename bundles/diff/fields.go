package diff

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
)

// secretFields hold a Secret's values; a diff names their keys only.
var secretFields = []string{"data", "stringData"}

// diffObject compares two objects field by field, masking Secret values.
func diffObject(a, b map[string]any) []FieldChange {
	if !isSecret(a) && !isSecret(b) {
		return diffValues(a, b)
	}
	// Compare everything but the values, then the values' keys.
	ra, rb := without(a, secretFields), without(b, secretFields)
	out := diffValues(ra, rb)
	for _, f := range secretFields {
		out = append(out, maskedDiff(f, a[f], b[f])...)
	}
	slices.SortStableFunc(out, func(x, y FieldChange) int { return comparePaths(x.Path, y.Path) })
	return out
}

func isSecret(o map[string]any) bool {
	return o["kind"] == "Secret" && o["apiVersion"] == "v1"
}

func without(m map[string]any, keys []string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// maskedDiff compares one value field of a Secret: which keys were added,
// removed or changed, never what they hold.
func maskedDiff(field string, a, b any) []FieldChange {
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if a != nil && !okA || b != nil && !okB {
		// Not a map of keys: say that the field changed, nothing more.
		if reflect.DeepEqual(a, b) {
			return nil
		}
		return []FieldChange{{Path: field, Status: statusOf(a != nil, b != nil), Masked: true}}
	}
	var out []FieldChange
	for _, k := range sortedKeys(ma, mb) {
		va, inA := ma[k]
		vb, inB := mb[k]
		if inA && inB && reflect.DeepEqual(va, vb) {
			continue
		}
		out = append(out, FieldChange{Path: joinKey(field, k), Status: statusOf(inA, inB), Masked: true})
	}
	return out
}

func statusOf(inA, inB bool) Status {
	switch {
	case !inA:
		return Added
	case !inB:
		return Removed
	}
	return Changed
}

// diffValues compares two decoded JSON values and lists the changed
// leaves, in document order: map keys sorted, list items by position.
func diffValues(a, b any) []FieldChange {
	var out []FieldChange
	walk("", a, b, &out)
	return out
}

func walk(path string, a, b any, out *[]FieldChange) {
	switch va := a.(type) {
	case map[string]any:
		if vb, ok := b.(map[string]any); ok {
			for _, k := range sortedKeys(va, vb) {
				ca, inA := va[k]
				cb, inB := vb[k]
				p := joinKey(path, k)
				switch {
				case !inA:
					*out = append(*out, FieldChange{Path: p, Status: Added, To: cb})
				case !inB:
					*out = append(*out, FieldChange{Path: p, Status: Removed, From: ca})
				default:
					walk(p, ca, cb, out)
				}
			}
			return
		}
	case []any:
		if vb, ok := b.([]any); ok {
			walkList(path, va, vb, out)
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, FieldChange{Path: path, Status: Changed, From: a, To: b})
	}
}

// walkList compares two lists. Lists of named items (containers, env,
// ports, volumes) are matched by name, as Kubernetes merges them, so that
// inserting one item does not show every later one as changed; the path
// then gives the item's position in the new list (the old one for a
// removed item). Other lists are compared by position.
func walkList(path string, a, b []any, out *[]FieldChange) {
	na, okA := names(a)
	nb, okB := names(b)
	if !okA || !okB || !sameOrder(na, nb) {
		n := min(len(a), len(b))
		for i := range n {
			walk(index(path, i), a[i], b[i], out)
		}
		for i := n; i < len(b); i++ {
			*out = append(*out, FieldChange{Path: index(path, i), Status: Added, To: b[i]})
		}
		for i := n; i < len(a); i++ {
			*out = append(*out, FieldChange{Path: index(path, i), Status: Removed, From: a[i]})
		}
		return
	}
	byName := map[string]int{}
	for i, n := range na {
		byName[n] = i
	}
	inB := map[string]bool{}
	for i, n := range nb {
		inB[n] = true
		if j, ok := byName[n]; ok {
			walk(index(path, i), a[j], b[i], out)
		} else {
			*out = append(*out, FieldChange{Path: index(path, i), Status: Added, To: b[i]})
		}
	}
	for j, n := range na {
		if !inB[n] {
			*out = append(*out, FieldChange{Path: index(path, j), Status: Removed, From: a[j]})
		}
	}
}

// sameOrder says whether the names both lists share come in the same
// order: a reordering is a change, which matching by name would hide.
func sameOrder(a, b []string) bool {
	inB := map[string]bool{}
	for _, n := range b {
		inB[n] = true
	}
	inA := map[string]bool{}
	var ca, cb []string
	for _, n := range a {
		inA[n] = true
		if inB[n] {
			ca = append(ca, n)
		}
	}
	for _, n := range b {
		if inA[n] {
			cb = append(cb, n)
		}
	}
	return slices.Equal(ca, cb)
}

// names returns the "name" of every item of a list of maps, if they all
// have a distinct one.
func names(l []any) ([]string, bool) {
	if len(l) == 0 {
		return nil, true
	}
	out := make([]string, len(l))
	seen := map[string]bool{}
	for i, it := range l {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || seen[n] {
			return nil, false
		}
		seen[n] = true
		out[i] = n
	}
	return out, true
}

// plainKey is a key written as is in a path; others are quoted:
// metadata.labels["app.kubernetes.io/name"].
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// comparePaths orders paths as walk emits them for the keys of one map:
// by their first element.
func comparePaths(a, b string) int {
	ka, kb := firstElem(a), firstElem(b)
	switch {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}

func firstElem(p string) string {
	for i, r := range p {
		if r == '.' || r == '[' {
			return p[:i]
		}
	}
	return p
}
