package helm

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"text/template/parse"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// A site is one call of a non-deterministic function in a chart's
// templates. Every such call is given a name of its own in the templates
// the tracer renders (randAlphaNum becomes randAlphaNum_gsite12, same
// length of line, same line numbers), so that the value it returns can be
// traced back to the file and line that called it: a template function is
// not told where it is called from.
type site struct {
	Func string // randAlphaNum
	File string // airflow/templates/secrets/fernetkey-secret.yaml
	Line int
	// Expr is the pipeline the call sits in, as text/template prints it:
	// it names the values the template reads there.
	Expr string
	// Chart is the chart's path in the tree ("airflow/charts/postgresql"),
	// to turn a .Values key of a subchart into the parent's key.
	Chart string
	// Compared names the text/template builtin (eq, lt, len, index...)
	// the value is given to, directly, through a pipeline or a variable:
	// builtins cannot be wrapped, so such a call is refused.
	Compared string
}

// builtins are text/template's own functions that look at a value's
// contents; the tracer cannot wrap them.
var builtins = map[string]bool{
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "index": true, "and": true, "or": true, "not": true, "call": true,
}

func (s *site) where() string {
	if s == nil {
		return "a template string rendered with tpl"
	}
	return fmt.Sprintf("%s:%d", s.File, s.Line)
}

const siteSuffix = "_gsite"

func siteFuncName(fn string, id int) string { return fmt.Sprintf("%s%s%d", fn, siteSuffix, id) }

// traceTree returns a copy of the chart tree whose templates call every
// non-deterministic function under a per-site name, with the sites. Files
// that do not parse are left as they are (rendering reports the error);
// their calls go through the plain names and have no site.
func traceTree(c *chart.Chart) (*chart.Chart, []*site) {
	var sites []*site
	var rec func(c *chart.Chart) *chart.Chart
	rec = func(c *chart.Chart) *chart.Chart {
		out := *c
		out.Templates = make([]*common.File, len(c.Templates))
		for i, f := range c.Templates {
			out.Templates[i] = f
			full := path.Join(c.ChartFullPath(), f.Name)
			data, found := rewriteCalls(full, string(f.Data), func(fn string, line int, expr, compared string) int {
				sites = append(sites, &site{Func: fn, File: full, Line: line, Expr: expr, Chart: c.ChartFullPath(), Compared: compared})
				return len(sites) - 1
			})
			if found {
				nf := *f
				nf.Data = []byte(data)
				out.Templates[i] = &nf
			}
		}
		deps := make([]*chart.Chart, len(c.Dependencies()))
		for i, d := range c.Dependencies() {
			deps[i] = rec(d)
		}
		out.SetDependencies(deps...)
		return &out
	}
	return rec(c), sites
}

// rewriteCalls renames each call of a traced function in text, asking
// newSite for its id.
func rewriteCalls(name, text string, newSite func(fn string, line int, expr, compared string) int) (string, bool) {
	if !mentionsTraced(text) {
		return text, false
	}
	return rewriteParsed(name, text, newSite)
}

// rewriteParsed is rewriteCalls without the mentionsTraced shortcut.
func rewriteParsed(name, text string, newSite func(fn string, line int, expr, compared string) int) (string, bool) {
	t := parse.New(name)
	t.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := t.Parse(text, "", "", trees); err != nil {
		return text, false
	}
	type hit struct {
		pos      int
		fn       string
		expr     string
		compared string
	}
	var hits []hit
	// varHits are the hits whose value a variable holds ($x := randAlpha 5).
	varHits := map[string][]int{}
	compare := func(from int, builtin string) {
		for i := from; i < len(hits); i++ {
			if hits[i].compared == "" {
				hits[i].compared = builtin
			}
		}
	}
	var walk func(n parse.Node, expr string)
	walkPipe := func(p *parse.PipeNode, expr string) {
		if p == nil {
			return
		}
		if expr == "" {
			expr = p.String()
		}
		start := len(hits)
		for _, c := range p.Cmds {
			// A builtin later in a pipeline gets what came before.
			if len(c.Args) > 0 {
				if id, ok := c.Args[0].(*parse.IdentifierNode); ok && builtins[id.Ident] {
					compare(start, id.Ident)
				}
			}
			walk(c, expr)
		}
		for _, v := range p.Decl {
			for i := start; i < len(hits); i++ {
				varHits[v.Ident[0]] = append(varHits[v.Ident[0]], i)
			}
		}
	}
	walk = func(n parse.Node, expr string) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, "")
			}
		case *parse.ActionNode:
			walkPipe(n.Pipe, expr)
		case *parse.PipeNode:
			walkPipe(n, expr)
		case *parse.CommandNode:
			start := len(hits)
			for _, a := range n.Args {
				walk(a, expr)
			}
			if len(n.Args) > 0 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && builtins[id.Ident] {
					compare(start, id.Ident)
					for _, a := range n.Args[1:] {
						if v, ok := a.(*parse.VariableNode); ok {
							for _, i := range varHits[v.Ident[0]] {
								if hits[i].compared == "" {
									hits[i].compared = id.Ident
								}
							}
						}
					}
				}
			}
		case *parse.ChainNode:
			walk(n.Node, expr)
		case *parse.IfNode:
			walkPipe(n.Pipe, "")
			walk(n.List, "")
			walk(n.ElseList, "")
		case *parse.RangeNode:
			walkPipe(n.Pipe, "")
			walk(n.List, "")
			walk(n.ElseList, "")
		case *parse.WithNode:
			walkPipe(n.Pipe, "")
			walk(n.List, "")
			walk(n.ElseList, "")
		case *parse.TemplateNode:
			walkPipe(n.Pipe, "")
		case *parse.IdentifierNode:
			if _, ok := nondeterministic[n.Ident]; ok {
				p := int(n.Pos)
				if p+len(n.Ident) <= len(text) && text[p:p+len(n.Ident)] == n.Ident {
					hits = append(hits, hit{pos: p, fn: n.Ident, expr: expr})
				}
			}
		}
	}
	for _, tr := range trees {
		if tr.Root != nil {
			walk(tr.Root, "")
		}
	}
	if len(hits) == 0 {
		return text, false
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].pos < hits[j].pos })
	var b strings.Builder
	last := 0
	for i, h := range hits {
		if i > 0 && h.pos == hits[i-1].pos {
			continue // the same node reached from two trees
		}
		line := 1 + strings.Count(text[:h.pos], "\n")
		id := newSite(h.fn, line, h.expr, h.compared)
		b.WriteString(text[last:h.pos])
		b.WriteString(siteFuncName(h.fn, id))
		last = h.pos + len(h.fn)
	}
	b.WriteString(text[last:])
	return b.String(), true
}

// mentionsTraced says whether text holds a traced function's name as a
// whole word, the only way a template can call it: the parser's
// identifiers are runs of letters, digits and '_', so one it reads as
// "date" is also a whole ASCII word here. Words, not substrings: "date"
// is in "update" and "validate", which sent nearly every template
// through the parser for nothing.
func mentionsTraced(text string) bool {
	start := -1
	for i := 0; i <= len(text); i++ {
		if i < len(text) && isWordByte(text[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if _, ok := nondeterministic[text[start:i]]; ok {
				return true
			}
			start = -1
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
