package compiler

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"

	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/compiler/helm"
	"github.com/galley-dev/galley/compiler/stack"
)

var (
	schemaViolation = regexp.MustCompile(`^- at '([^']*)': (.*)$`)
	additionalProps = regexp.MustCompile(`^additional propert(?:y|ies) '([^']+)'`)
)

// valuesSchemaErrors turns helm's report of values that break a chart's
// values.schema.json into one error per violation, each at the CUE line
// of the value (or the closest value above it the stack writes) rather
// than at the app's chart. ok is false when err is no such report.
func valuesSchemaErrors(a *stack.App, chartName string, err error) (_ stack.Errors, ok bool) {
	msg := err.Error()
	var errs stack.Errors
	sub := "" // the subchart the following lines are about
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, "-") && !strings.Contains(line, " ") {
			sub = strings.TrimSuffix(line, ":")
			if sub == chartName {
				sub = ""
			}
			continue
		}
		m := schemaViolation.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var keys []string
		if sub != "" {
			keys = append(keys, sub)
		}
		for _, k := range strings.Split(strings.TrimPrefix(m[1], "/"), "/") {
			if k != "" {
				keys = append(keys, strings.NewReplacer("~1", "/", "~0", "~").Replace(k))
			}
		}
		if p := additionalProps.FindStringSubmatch(m[2]); p != nil {
			keys = append(keys, p[1]) // the field not allowed, not its parent
		}
		errs = append(errs, valuesError(a, keys, "%s (the chart's values.schema.json)", m[2]))
	}
	if len(errs) == 0 {
		return nil, false
	}
	return errs, true
}

// valuesError is an error about the value at keys below the app's values,
// placed at the deepest of them the stack writes.
func valuesError(a *stack.App, keys []string, format string, args ...any) *stack.Error {
	path := "stack.apps." + a.Name + ".values"
	for _, k := range keys {
		path += "." + label(k)
	}
	e := &stack.Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	for n := len(keys); n >= 0; n-- {
		sels := []cue.Selector{cue.Str("values")}
		for _, k := range keys[:n] {
			sels = append(sels, cue.Str(k))
		}
		if v := a.Value().LookupPath(cue.MakePath(sels...)); v.Exists() {
			if p := stack.UserPos(v); p.IsValid() {
				e.Pos = p
				return e
			}
		}
	}
	e.Pos = a.Pos("chart")
	return e
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func label(k string) string {
	if identifier.MatchString(k) {
		return k
	}
	return strconv.Quote(k)
}

// CheckCharts finds, without rendering or any network access, what would
// fail a build in the stack's charts: remote charts missing from
// galley.lock or whose lock entry no longer matches the stack, and values
// that break a chart's values.schema.json (for local charts, and remote
// ones already in the cache). Every problem is a stack error.
func CheckCharts(ctx context.Context, s *stack.Stack, o charts.Options) error {
	o.Offline, o.UpdateLock = true, false
	var errs stack.Errors
	remote, err := charts.Prepare(ctx, s, o)
	if err != nil {
		var ok bool
		if errs, ok = appendStackErrors(errs, err); !ok {
			return err
		}
		// A locked chart not in this machine's cache is no mistake in the
		// stack: its values are checked where it is.
		errs = slices.DeleteFunc(errs, func(e *stack.Error) bool { return strings.Contains(e.Msg, "fetching is off") })
		// Check what can be checked without the remote charts.
		remote = nil
	}
	for _, a := range s.Apps {
		if err := ctx.Err(); err != nil {
			return err
		}
		ch, ok := remote[a.Name]
		if !ok {
			if a.Chart.Remote() {
				continue
			}
			if ch, err = helm.Load(s.Path(a.Chart.Path)); err != nil {
				errs = append(errs, appError(a, "chart.path", "%v", err))
				continue
			}
		}
		values, err := appValues(s, a)
		if err != nil {
			if errs, ok = appendStackErrors(errs, err); !ok {
				return err
			}
			continue
		}
		if err := helm.ValidateValues(ch, values); err != nil {
			es, ok := valuesSchemaErrors(a, ch.Name, err)
			if !ok {
				es = stack.Errors{appError(a, "values", "%v", err)}
			}
			errs = append(errs, es...)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
