package stack

import (
	"strings"

	"cuelang.org/go/cue"
)

// didYouMean is the hint for a name that is not one of candidates: the
// closest candidate, when one is close enough to be the name misspelt
// (a letter or two off, or the same but for case, or one a prefix of the
// other), or "".
func didYouMean(name string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if c == name {
			return ""
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if d > max(2, len(name)/3) && !strings.HasPrefix(c, name) && !strings.HasPrefix(name, c) {
			continue
		}
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return "did you mean " + best + "?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// hintUnknownFields adds "did you mean" to each "field not allowed" error,
// from the fields the schema declares where the unknown one was written.
// v is the stack unified with the schema.
func hintUnknownFields(errs Errors, v cue.Value) {
	for _, e := range errs {
		if e.Hint != "" || !strings.HasPrefix(e.Msg, "field not allowed") || len(e.elems) < 2 || e.elems[0] != Field {
			continue
		}
		name := e.elems[len(e.elems)-1]
		parent := v.LookupPath(selectorPath(e.elems[1 : len(e.elems)-1]))
		it, err := parent.Fields(cue.Optional(true))
		if err != nil {
			continue
		}
		var fields []string
		for it.Next() {
			if f := it.Selector().Unquoted(); f != name {
				fields = append(fields, f)
			}
		}
		e.Hint = didYouMean(name, fields)
	}
}

// dropInsideNotAllowed removes the errors inside a field that is itself
// not allowed: once `delivry` is misspelt, everything below it is
// unknown too, and saying so only hides the one fix.
func dropInsideNotAllowed(errs Errors) Errors {
	var unknown []string
	for _, e := range errs {
		if strings.HasPrefix(e.Msg, "field not allowed") && e.Path != "" {
			unknown = append(unknown, e.Path)
		}
	}
	out := errs[:0]
	for _, e := range errs {
		inside := false
		for _, u := range unknown {
			if strings.HasPrefix(e.Path, u+".") || strings.HasPrefix(e.Path, u+"[") {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, e)
		}
	}
	return out
}
