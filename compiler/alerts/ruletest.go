package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

// TestGroup is a unit test of one rule in promtool's format (a test group
// of `promtool test rules`): input series, and the alerts of the rule
// expected to fire at given times. The same test runs in-process at build
// (RunTests) and in the real promtool (UnitTestFile).
type TestGroup struct {
	Name        string      `json:"name,omitempty"`
	Interval    string      `json:"interval"`
	InputSeries []Series    `json:"input_series"`
	AlertTests  []AlertTest `json:"alert_rule_test"`
}

// Series is one input series in promtool's expanding notation.
type Series struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

// AlertTest expects exactly ExpAlerts of Alertname to fire at EvalTime.
type AlertTest struct {
	EvalTime  string     `json:"eval_time"`
	Alertname string     `json:"alertname"`
	ExpAlerts []ExpAlert `json:"exp_alerts"`
}

// ExpAlert is an expected alert: its labels and, when set, annotations
// (nil annotations are not checked in-process; RunTests fills them in from
// the firing alert so that promtool, which always compares them, agrees).
type ExpAlert struct {
	ExpLabels      map[string]string `json:"exp_labels,omitempty"`
	ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
}

// evalInterval is the rule evaluation interval of the tests, promtool's
// default.
const evalInterval = time.Minute

// TestFailure is a failed expectation of a rule's test.
type TestFailure struct {
	Group, Alert string
	// Key names the rule's tests (testKey).
	Key string
	// Test is the index of the test in the rule's tests, Expect the index
	// of the failed expectation (-1 for an error before any).
	Test, Expect int
	Msg          string
}

func (f *TestFailure) Error() string {
	return fmt.Sprintf("group %s: alert %s: test %d: %s", f.Group, f.Alert, f.Test, f.Msg)
}

// RunTests runs the tests of every rule of groups with Prometheus's rule
// evaluation on an in-memory TSDB, as `promtool test rules` does, and
// returns the tests completed with the annotations of the alerts that
// fired where a test left them out. tests are keyed by testKey. The
// error joins
// *TestFailure values.
func RunTests(groups []Group, tests map[string][]TestGroup) (map[string][]TestGroup, error) {
	// Each test has its own storage: they run side by side, and the
	// results are gathered in the order of the rules.
	type job struct {
		group string
		rule  Rule
		key   string
		i     int
		tg    TestGroup
		out   TestGroup
		err   error
	}
	var jobs []*job
	for _, g := range groups {
		for _, r := range g.Rules {
			key := testKey(r)
			for i, tg := range tests[key] {
				jobs = append(jobs, &job{group: g.Name, rule: r, key: key, i: i, tg: tg})
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			j.out, j.err = memoRunTest(j.rule, j.tg)
		})
	}
	wg.Wait()
	var errs []error
	done := map[string][]TestGroup{}
	for _, j := range jobs {
		if err := j.err; err != nil {
			var f *TestFailure
			if errors.As(err, &f) {
				f.Group, f.Alert, f.Key, f.Test = j.group, j.rule.Alert, j.key, j.i
			} else {
				err = &TestFailure{Group: j.group, Alert: j.rule.Alert, Key: j.key, Test: j.i, Expect: -1, Msg: err.Error()}
			}
			errs = append(errs, err)
			continue
		}
		done[j.key] = append(done[j.key], j.out)
	}
	return done, errors.Join(errs...)
}

// testResults remembers the result of each rule's test in this process:
// a build asks for the rule groups more than once (the bundle's files, the
// prometheus chart's values), and the answer depends on the rule and the
// test alone.
var testResults sync.Map

type testResult struct {
	out TestGroup
	err error
}

func memoRunTest(r Rule, tg TestGroup) (TestGroup, error) {
	k, err := json.Marshal(struct {
		R  Rule
		TG TestGroup
	}{r, tg})
	if err != nil {
		return runTest(r, tg)
	}
	v, ok := testResults.Load(string(k))
	if !ok {
		out, err := runTest(r, tg)
		v, _ = testResults.LoadOrStore(string(k), testResult{out, err})
	}
	res := v.(testResult)
	res.out.AlertTests = slices.Clone(res.out.AlertTests)
	if f, ok := res.err.(*TestFailure); ok { //nolint:errorlint // runTest returns it unwrapped
		c := *f // RunTests fills in where it failed
		return res.out, &c
	}
	return res.out, res.err
}

// testKey names the tests of a rule: its alert, or <alert>/<name> for
// the alerts of a pipeline or quality check, which share their name.
func testKey(r Rule) string {
	for _, l := range []string{"pipeline", "quality_check"} {
		if v := r.Labels[l]; v != "" {
			return r.Alert + "/" + v
		}
	}
	return r.Alert
}

func parseDur(what, s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return time.Duration(d), nil
}

func runTest(r Rule, tg TestGroup) (TestGroup, error) {
	interval, err := parseDur("interval", cmpOr(tg.Interval, "1m"))
	if err != nil {
		return tg, err
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", model.Duration(interval))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true, Parser: promQL})
	if err != nil {
		return tg, fmt.Errorf("input series: %w", err)
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval

	expr, err := promQL.ParseExpr(r.Expr)
	if err != nil {
		return tg, err
	}
	hold, keep := time.Duration(0), time.Duration(0)
	if r.For != "" {
		if hold, err = parseDur("for", r.For); err != nil {
			return tg, err
		}
	}
	if r.KeepFiringFor != "" {
		if keep, err = parseDur("keep_firing_for", r.KeepFiringFor); err != nil {
			return tg, err
		}
	}
	logger := slog.New(slog.DiscardHandler)
	rule := rules.NewAlertingRule(r.Alert, expr, hold, keep, labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, logger)
	opts := &rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       logger,
		Parser:       promQL,
	}
	group := rules.NewGroup(rules.GroupOptions{Name: "test", Interval: evalInterval, Rules: []rules.Rule{rule}, Opts: opts})

	type check struct {
		at  time.Duration
		idx int
	}
	var checks []check
	var maxT time.Duration
	for i, at := range tg.AlertTests {
		d, err := parseDur("eval_time", at.EvalTime)
		if err != nil {
			return tg, err
		}
		if at.Alertname != r.Alert {
			return tg, fmt.Errorf("expectation %d names alert %q; a test of this rule expects %q", i, at.Alertname, r.Alert)
		}
		checks = append(checks, check{d, i})
		maxT = max(maxT, d)
	}
	slices.SortStableFunc(checks, func(a, b check) int { return int(a.at - b.at) })
	var checkTimes []time.Duration
	for _, c := range checks {
		checkTimes = append(checkTimes, c.at)
	}

	out := tg
	out.AlertTests = slices.Clone(tg.AlertTests)
	start := time.Unix(0, 0).UTC()
	next := 0
	var evalErr error
	for _, off := range evalTimes(checkTimes, hold, r.KeepFiringFor != "" || strings.Contains(r.Expr, "ALERTS")) {
		ts := start.Add(off)
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErr = err
				return
			}
			group.Eval(suite.Context(), ts)
			evalErr = rule.LastError()
		})
		if evalErr != nil {
			return tg, fmt.Errorf("evaluating at %s: %w", ts.Sub(start), evalErr)
		}
		// promtool checks an eval_time against the last evaluation at or
		// before it.
		for next < len(checks) && checks[next].at < ts.Sub(start)+evalInterval {
			c := checks[next]
			next++
			var got []ExpAlert
			for _, a := range rule.ActiveAlerts() {
				if a.State == rules.StateFiring {
					l := a.Labels.Map()
					delete(l, labels.AlertName)
					got = append(got, ExpAlert{ExpLabels: l, ExpAnnotations: a.Annotations.Map()})
				}
			}
			filled, msg := compareAlerts(tg.AlertTests[c.idx].ExpAlerts, got)
			if msg != "" {
				return tg, &TestFailure{Expect: c.idx, Msg: "at " + tg.AlertTests[c.idx].EvalTime + ": " + msg}
			}
			out.AlertTests[c.idx].ExpAlerts = filled
		}
	}
	return out, nil
}

// evalTimes are the times, on the evaluation grid from 0 to maxT, at
// which a rule held for hold must be evaluated to know its alerts at the
// checks (sorted), up to the last check. promtool evaluates at every step; an alert's state at
// a check, though, depends only on the evaluations of the hold before it:
// it fires there exactly when its expression held at every evaluation
// since check-hold, whatever came earlier. Evaluating those windows alone
// gives the same answers at a fraction of the cost for rules with long
// windows (a freshness of a day is 1440 steps, two suffice). A rule that
// keeps firing, or reads the ALERTS series earlier evaluations write, is
// evaluated at every step.
func evalTimes(checks []time.Duration, hold time.Duration, everyStep bool) []time.Duration {
	var out []time.Duration
	next := time.Duration(0) // the first time not yet in out
	for _, c := range checks {
		end := c.Truncate(evalInterval)
		from := max(next, end-hold-evalInterval)
		if everyStep {
			from = next
		}
		for ts := from.Truncate(evalInterval); ts <= end; ts += evalInterval {
			if ts >= next {
				out = append(out, ts)
				next = ts + evalInterval
			}
		}
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// compareAlerts matches want to got by labels; annotations are compared
// where want sets them and filled in from got where it does not.
func compareAlerts(want, got []ExpAlert) ([]ExpAlert, string) {
	key := func(m map[string]string) string { return labels.FromMap(m).String() }
	byKey := map[string]ExpAlert{}
	for _, g := range got {
		byKey[key(g.ExpLabels)] = g
	}
	var filled []ExpAlert
	var problems []string
	seen := map[string]bool{}
	for _, w := range want {
		k := key(w.ExpLabels)
		seen[k] = true
		g, ok := byKey[k]
		if !ok {
			problems = append(problems, "expected alert "+k+" did not fire")
			continue
		}
		if w.ExpAnnotations != nil && !maps.Equal(w.ExpAnnotations, g.ExpAnnotations) {
			problems = append(problems, fmt.Sprintf("alert %s has annotations %s, want %s", k, key(g.ExpAnnotations), key(w.ExpAnnotations)))
		}
		filled = append(filled, ExpAlert{ExpLabels: w.ExpLabels, ExpAnnotations: g.ExpAnnotations})
	}
	for _, g := range got {
		if k := key(g.ExpLabels); !seen[k] {
			problems = append(problems, "unexpected alert "+k+" fired")
		}
	}
	if len(want) == 0 && len(got) == 0 {
		return nil, ""
	}
	slices.Sort(problems)
	return filled, strings.Join(problems, "; ")
}

// UnitTestFile is a `promtool test rules` file running tests against the
// rule files at rulePaths (relative to the test file).
func UnitTestFile(rulePaths []string, tests map[string][]TestGroup) ([]byte, error) {
	var all []TestGroup
	for _, name := range slices.Sorted(maps.Keys(tests)) {
		for _, tg := range tests[name] {
			if tg.Interval == "" {
				tg.Interval = "1m"
			}
			for i := range tg.AlertTests {
				if tg.AlertTests[i].ExpAlerts == nil {
					tg.AlertTests[i].ExpAlerts = []ExpAlert{}
				}
			}
			all = append(all, tg)
		}
	}
	return marshalYAML(map[string]any{
		"rule_files":          rulePaths,
		"evaluation_interval": "1m",
		"tests":               all,
	})
}
