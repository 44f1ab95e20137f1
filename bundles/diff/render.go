package diff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles"
)

// TextOptions tune WriteText.
type TextOptions struct {
	// Color adds ANSI colours: for a terminal, not for a log or a file.
	Color bool
}

// WriteJSON writes the Result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the Result for a terminal: a title, then each section
// with its chart, objects ("+" added, "-" removed, "~" changed) and
// changed fields, then the summary.
func (r *Result) WriteText(w io.Writer, o TextOptions) error {
	bw := bufio.NewWriter(w)
	c := palette(o.Color)
	fmt.Fprintf(bw, "%s%s%s\n", c.bold, r.title("->"), c.reset)
	if len(r.Stack) > 0 {
		fmt.Fprintf(bw, "\n%sstack%s\n", c.bold, c.reset)
		writeTextLines(bw, c, fieldLines(r.Stack, 0), 1)
	}
	for _, s := range r.Sections {
		fmt.Fprintf(bw, "\n%s%s%s%s\n", c.bold, s.title(), statusSuffix(s.Status), c.reset)
		var lines []line
		if s.Chart != nil {
			lines = append(lines, line{op: chartOp(s.Chart), text: "chart " + chartText(s.Chart, "->")})
		}
		lines = append(lines, s.body()...)
		writeTextLines(bw, c, lines, 1)
	}
	fmt.Fprintf(bw, "\n%s\n", r.summaryLine())
	return bw.Flush()
}

// WriteMarkdown writes the Result for a pull-request comment: a title,
// the summary, a table of the changed sections, then a heading per
// section with its chart and a fenced diff block.
func (r *Result) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "## galley bundle diff: %s\n\n", r.title("→"))
	fmt.Fprintf(bw, "**%s**\n", r.summaryLine())
	if len(r.Stack) > 0 {
		fmt.Fprintf(bw, "\n### stack\n\n")
		writeFenced(bw, fieldLines(r.Stack, 0))
	}
	if len(r.Sections) > 0 {
		fmt.Fprintf(bw, "\n| Section | Chart | Added | Removed | Changed |\n|---|---|---:|---:|---:|\n")
		for _, s := range r.Sections {
			added, removed, changed := s.counts()
			chart := ""
			if s.Chart != nil {
				chart = chartText(s.Chart, "→")
			}
			fmt.Fprintf(bw, "| %s%s | %s | %d | %d | %d |\n", s.mdTitle(), statusSuffix(s.Status), chart, added, removed, changed)
		}
	}
	for _, s := range r.Sections {
		fmt.Fprintf(bw, "\n### %s%s\n", s.mdTitle(), statusSuffix(s.Status))
		if s.Chart != nil {
			fmt.Fprintf(bw, "\nChart %s\n", chartText(s.Chart, "→"))
		}
		if body := s.body(); len(body) > 0 {
			bw.WriteString("\n")
			writeFenced(bw, body)
		}
	}
	return bw.Flush()
}

func (r *Result) title(arrow string) string {
	side := func(s *bundles.IndexStack) string {
		if s == nil {
			return "(a bundle without bundle.json)"
		}
		return s.Name + " " + s.Version
	}
	if r.From != nil && r.To != nil && r.From.Name == r.To.Name {
		return r.From.Name + " " + r.From.Version + " " + arrow + " " + r.To.Version
	}
	return side(r.From) + " " + arrow + " " + side(r.To)
}

func (r *Result) summaryLine() string {
	if r.Equal() {
		return "no changes"
	}
	return r.Summary.String()
}

func statusSuffix(s Status) string {
	if s == Changed {
		return ""
	}
	return " (" + string(s) + ")"
}

func (s *Section) title() string {
	switch s.Kind {
	case KindApp, KindJob:
		return s.Kind + " " + s.Name
	case KindOther:
		if s.Path == "" {
			return "files at the top of the bundle"
		}
	}
	return s.Path + "/"
}

func (s *Section) mdTitle() string {
	switch s.Kind {
	case KindApp, KindJob:
		return s.Kind + " `" + s.Name + "`"
	case KindOther:
		if s.Path == "" {
			return "files at the top of the bundle"
		}
	}
	return "`" + s.Path + "/`"
}

// counts are the objects and files added, removed and changed.
func (s *Section) counts() (added, removed, changed int) {
	count := func(st Status) {
		switch st {
		case Added:
			added++
		case Removed:
			removed++
		case Changed:
			changed++
		}
	}
	for _, o := range s.Objects {
		count(o.Status)
	}
	for _, f := range s.Files {
		count(f.Status)
	}
	return added, removed, changed
}

func chartOp(c *ChartChange) byte {
	switch {
	case c.From == nil:
		return '+'
	case c.To == nil:
		return '-'
	}
	return '~'
}

// chartText says how a chart changed: "metabase 1.2.0 -> 1.3.0 (app
// version v0.50.21 -> v0.51.0)".
func chartText(c *ChartChange, arrow string) string {
	switch {
	case c.From == nil:
		return fmt.Sprintf("%s %s", c.To.Name, c.To.Version)
	case c.To == nil:
		return fmt.Sprintf("%s %s", c.From.Name, c.From.Version)
	}
	f, t := c.From, c.To
	var s string
	switch {
	case f.Name != t.Name:
		s = fmt.Sprintf("%s %s %s %s %s", f.Name, f.Version, arrow, t.Name, t.Version)
	case f.Version != t.Version:
		s = fmt.Sprintf("%s %s %s %s", t.Name, f.Version, arrow, t.Version)
	default:
		s = fmt.Sprintf("%s %s", t.Name, t.Version)
	}
	if f.AppVersion != t.AppVersion {
		s += fmt.Sprintf(" (app version %s %s %s)", orNone(f.AppVersion), arrow, orNone(t.AppVersion))
	}
	if f.Name == t.Name && f.Version == t.Version && f.Digest != t.Digest {
		s += ": contents changed under the same version"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// line is one rendered line of a section: op is ' ' (plain), '+', '-',
// '~' (changed; from and to set for a changed scalar), '!' (a masked
// Secret value) or '@' (a line-diff hunk header). depth is the nesting.
type line struct {
	op       byte
	depth    int
	text     string
	from, to string
	scalar   bool
}

// body lists a section's field, object and file changes.
func (s *Section) body() []line {
	lines := fieldLines(s.Fields, 0)
	for _, o := range s.Objects {
		switch o.Status {
		case Added:
			lines = append(lines, line{op: '+', text: o.ID()})
		case Removed:
			lines = append(lines, line{op: '-', text: o.ID()})
		default:
			lines = append(lines, line{op: '~', text: o.ID()})
			lines = append(lines, fieldLines(o.Fields, 1)...)
		}
	}
	for _, f := range s.Files {
		switch f.Status {
		case Added:
			lines = append(lines, line{op: '+', text: f.Path})
		case Removed:
			lines = append(lines, line{op: '-', text: f.Path})
		default:
			text := f.Path
			if f.Binary {
				text += " (binary)"
			}
			lines = append(lines, line{op: '~', text: text})
			lines = append(lines, fieldLines(f.Fields, 1)...)
			if f.Diff != "" {
				lines = append(lines, hunkLines(strings.Split(f.Diff, "\n"), 2)...)
			}
		}
	}
	return lines
}

func fieldLines(fields []FieldChange, depth int) []line {
	var out []line
	for _, f := range fields {
		if f.Masked {
			out = append(out, line{op: '!', depth: depth, text: f.Path + ": " + string(f.Status) + " (value hidden)"})
			continue
		}
		switch f.Status {
		case Added:
			out = append(out, valueLines('+', depth, f.Path, f.To)...)
		case Removed:
			out = append(out, valueLines('-', depth, f.Path, f.From)...)
		default:
			sa, okA := f.From.(string)
			sb, okB := f.To.(string)
			if okA && okB && (strings.Contains(sa, "\n") || strings.Contains(sb, "\n")) {
				out = append(out, line{op: '~', depth: depth, text: f.Path + ":"})
				out = append(out, hunkLines(unified(splitLines(sa), splitLines(sb), 3), depth+1)...)
				continue
			}
			from, fromOK := inline(f.From)
			to, toOK := inline(f.To)
			if fromOK && toOK {
				out = append(out, line{op: '~', depth: depth, text: f.Path, from: from, to: to, scalar: true})
				continue
			}
			out = append(out, valueLines('-', depth, f.Path, f.From)...)
			out = append(out, valueLines('+', depth, f.Path, f.To)...)
		}
	}
	return out
}

// valueLines shows an added or removed value: inline when it is a scalar
// on one line, else as YAML below the path.
func valueLines(op byte, depth int, path string, v any) []line {
	if s, ok := inline(v); ok {
		return []line{{op: op, depth: depth, text: path + ": " + s}}
	}
	out := []line{{op: op, depth: depth, text: path + ":"}}
	var text string
	if s, ok := v.(string); ok {
		text = s
	} else {
		b, err := yaml.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprint(v))
		}
		text = string(b)
	}
	for _, l := range splitLines(text) {
		out = append(out, line{op: op, depth: depth + 1, text: l})
	}
	return out
}

// inline renders a scalar as JSON ("x:1", 3, true, null); false for
// lists, maps and strings of several lines.
func inline(v any) (string, bool) {
	switch x := v.(type) {
	case map[string]any, []any:
		return "", false
	case string:
		if strings.Contains(x, "\n") {
			return "", false
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// hunkLines turns unified-diff lines into lines at depth.
func hunkLines(hunks []string, depth int) []line {
	var out []line
	for _, h := range hunks {
		if h == "" {
			continue
		}
		switch h[0] {
		case '@':
			out = append(out, line{op: '@', depth: depth, text: h})
		default:
			out = append(out, line{op: h[0], depth: depth, text: h[1:]})
		}
	}
	return out
}

type colors struct{ bold, red, green, yellow, cyan, reset string }

func palette(on bool) colors {
	if !on {
		return colors{}
	}
	return colors{bold: "\x1b[1m", red: "\x1b[31m", green: "\x1b[32m", yellow: "\x1b[33m", cyan: "\x1b[36m", reset: "\x1b[0m"}
}

func writeTextLines(w *bufio.Writer, c colors, lines []line, base int) {
	for _, l := range lines {
		indent := strings.Repeat("  ", base+l.depth)
		var color, sym string
		switch l.op {
		case '+':
			color, sym = c.green, "+ "
		case '-':
			color, sym = c.red, "- "
		case '~', '!':
			color, sym = c.yellow, "~ "
		case '@':
			color, sym = c.cyan, ""
		default:
			sym = "  "
		}
		text := l.text
		if l.scalar {
			text = l.text + ": " + l.from + " -> " + l.to
		}
		reset := c.reset
		if color == "" {
			reset = ""
		}
		fmt.Fprintf(w, "%s%s%s%s%s\n", indent, color, sym, text, reset)
	}
}

// writeFenced writes lines as a fenced diff block, which renders "+"
// lines green and "-" lines red. A changed scalar becomes a "-" and a
// "+" line.
func writeFenced(w *bufio.Writer, lines []line) {
	var out []string
	for _, l := range lines {
		indent := strings.Repeat("  ", l.depth)
		switch {
		case l.scalar:
			out = append(out, "- "+indent+l.text+": "+l.from, "+ "+indent+l.text+": "+l.to)
		case l.op == '+' || l.op == '-' || l.op == '!':
			out = append(out, string(l.op)+" "+indent+l.text)
		case l.op == '@':
			out = append(out, l.text)
		default: // '~' headings and context lines
			out = append(out, "  "+indent+l.text)
		}
	}
	fence := "```"
	for _, l := range out {
		for strings.Contains(l, fence) {
			fence += "`"
		}
	}
	fmt.Fprintf(w, "%sdiff\n%s\n%s\n", fence, strings.Join(out, "\n"), fence)
}
