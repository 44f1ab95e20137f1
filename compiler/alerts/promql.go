package alerts

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"

	"github.com/prometheus/prometheus/promql/parser"
)

// promQL has promtool's default options (no experimental functions), so
// galley accepts exactly what `promtool check rules` and a Prometheus
// without feature flags accept.
var promQL = parser.NewParser(parser.Options{})

// ExprError is a syntax error in a PromQL expression.
type ExprError struct {
	// Offset is the byte offset in the expression where the error starts.
	Offset int
	// Msg is the parser's message, without its position.
	Msg string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("at byte %d: %s", e.Offset, e.Msg)
}

// ParseExpr parses expr with the Prometheus parser. A syntax error comes
// back as an *ExprError for its first problem.
func ParseExpr(expr string) error {
	_, err := promQL.ParseExpr(expr)
	if err == nil {
		return nil
	}
	var perr *parser.ParseErr
	if perrs, ok := errors.AsType[parser.ParseErrors](err); ok && len(perrs) > 0 {
		perr = &perrs[0]
	} else if perr, ok = errors.AsType[*parser.ParseErr](err); !ok {
		return err
	}
	e := &ExprError{Offset: int(perr.PositionRange.Start), Msg: perr.Err.Error()}
	// The lexer reports a stray ")" once past it; point at it.
	if strings.HasPrefix(e.Msg, "unexpected right parenthesis") && e.Offset > 0 && e.Offset <= len(expr) && expr[e.Offset-1] == ')' {
		e.Offset--
	}
	return e
}

// templateDefs are the variables Prometheus defines before it parses an
// alert's label and annotation templates.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

var templateLine = regexp.MustCompile(`^template: [^:]*:\d+: `)

// CheckTemplate parses a label or annotation template of alert as
// Prometheus does. Function names are not checked, since the set depends
// on the Prometheus version: promtool checks them in the compatibility
// tests.
func CheckTemplate(alert, text string) error {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t := parse.New("__alert_" + alert)
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(templateDefs+text, "{{", "}}", map[string]*parse.Tree{}); err != nil {
		return errors.New(templateLine.ReplaceAllString(err.Error(), ""))
	}
	return nil
}

// selector writes metric{k="v",...} with the matchers sorted by label,
// each value quoted as PromQL reads it.
func selector(metric string, matchers ...string) string {
	if len(matchers) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(matchers, ", ") + "}"
}

func eq(label, value string) string { return label + "=" + strconv.Quote(value) }

func ne(label, value string) string { return label + "!=" + strconv.Quote(value) }

func re(label, value string) string { return label + "=~" + strconv.Quote(value) }

// oneOf matches label against any of values, literally.
func oneOf(label string, values []string) string {
	if len(values) == 1 {
		return eq(label, values[0])
	}
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return re(label, strings.Join(quoted, "|"))
}

// matchers turns a label map into sorted equality matchers.
func matchers(m map[string]string) []string {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = eq(k, m[k])
	}
	return out
}

// number writes a threshold the way PromQL and a person read it.
func number(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
