package manifest

import (
	"fmt"
	"regexp"
	"strings"
)

var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

// FileNames gives each object a file name in its app directory:
// <kind>-<name>.yaml, made unique with the namespace and then the group
// when a chart renders two objects that would share one. The names depend
// only on the objects, in order.
func FileNames(objs []*Object) []string {
	base := func(o *Object, parts ...string) string {
		s := strings.ToLower(strings.Join(append([]string{o.Kind}, parts...), "-"))
		return strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-.")
	}
	count := map[string]int{}
	for _, o := range objs {
		count[base(o, o.Name)]++
	}
	names := make([]string, len(objs))
	used := map[string]bool{}
	for i, o := range objs {
		n := base(o, o.Name)
		if count[n] > 1 {
			n = base(o, o.Name, o.Namespace, strings.ReplaceAll(o.Group(), ".", "-"))
		}
		for k, cand := 2, n; ; k++ {
			if !used[cand] {
				n = cand
				break
			}
			cand = fmt.Sprintf("%s-%d", n, k)
		}
		used[n] = true
		names[i] = n + ".yaml"
	}
	return names
}
