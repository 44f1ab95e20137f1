package diff

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxLCSCells bounds the table of the line diff (4 bytes a cell): past
// it, the changed middle of two texts is shown as all removed, then all
// added, which is correct if not minimal.
const maxLCSCells = 4 << 20

// splitLines splits text into lines without their newlines; a final
// newline ends the last line rather than starting an empty one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func isText(b []byte) bool {
	return utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
}

// op is one line of a line diff: ' ' kept, '-' removed, '+' added.
type op struct {
	kind byte
	text string
}

// diffLines returns a shortest edit script from a to b: a longest common
// subsequence over the lines between the common prefix and suffix.
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []op
	for _, l := range a[:pre] {
		out = append(out, op{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	if (n+1)*(m+1) > maxLCSCells {
		for _, l := range ma {
			out = append(out, op{'-', l})
		}
		for _, l := range mb {
			out = append(out, op{'+', l})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		w := m + 1
		lcs := make([]uint32, (n+1)*w)
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				out = append(out, op{' ', ma[i]})
				i++
				j++
			case i < n && (j == m || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
				// Removals first, as diff(1) shows them.
				out = append(out, op{'-', ma[i]})
				i++
			default:
				out = append(out, op{'+', mb[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-suf:] {
		out = append(out, op{' ', l})
	}
	return out
}

// unified renders the line diff of a and b as unified-diff hunks with
// context lines around each change: "@@ -3,4 +3,5 @@", then lines that
// start with ' ', '-' or '+'.
func unified(a, b []string, context int) []string {
	ops := diffLines(a, b)
	var out []string
	// la and lb are the line numbers in a and b of ops[counted]: hunks
	// come in order, so each count picks up where the last one stopped.
	la, lb, counted := 1, 1, 0
	for start := 0; start < len(ops); {
		// Find the next change.
		c := start
		for c < len(ops) && ops[c].kind == ' ' {
			c++
		}
		if c == len(ops) {
			break
		}
		lo := max(start, c-context)
		// Extend the hunk while changes are within 2*context lines.
		hi := c
		for {
			for hi < len(ops) && ops[hi].kind != ' ' {
				hi++
			}
			next := hi
			for next < len(ops) && ops[next].kind == ' ' {
				next++
			}
			if next < len(ops) && next-hi <= 2*context {
				hi = next
				continue
			}
			hi = min(hi+context, len(ops))
			break
		}
		for _, o := range ops[counted:lo] {
			if o.kind != '+' {
				la++
			}
			if o.kind != '-' {
				lb++
			}
		}
		counted = lo
		na, nb := 0, 0
		var body []string
		for _, o := range ops[lo:hi] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
			body = append(body, string(o.kind)+o.text)
		}
		out = append(out, fmt.Sprintf("@@ -%s +%s @@", hunkRange(la, na), hunkRange(lb, nb)))
		out = append(out, body...)
		start = hi
	}
	return out
}

// hunkRange is GNU diff's: "l,n", "l" for one line, "l-1,0" for none.
func hunkRange(l, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", l-1)
	case 1:
		return fmt.Sprintf("%d", l)
	}
	return fmt.Sprintf("%d,%d", l, n)
}
