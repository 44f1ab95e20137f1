package compiler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/alerts"
	"github.com/galley-dev/galley/compiler/argocd"
	"github.com/galley-dev/galley/compiler/stack"
)

// addMonitoring writes monitoring/ for a stack with a monitoring block,
// and returns its objects.
func addMonitoring(tree *bundles.Tree, s *stack.Stack, apps []*renderedApp, cache *renderCache) ([]*Object, error) {
	if s.Monitoring == nil {
		return nil, nil
	}
	o, err := monitoringOptions(s, apps)
	if err != nil {
		return nil, stack.Errors{s.MonitoringError("sources", "%v", err)}
	}
	if cache != nil { // a nil *renderCache in the interface would not be nil
		o.PassedTests = cache
	}
	files, err := alerts.Generate(o)
	if err != nil {
		return nil, monitoringError(s, err)
	}
	if len(files) == 0 && o.Chart {
		return nil, nil // everything went to the prometheus chart's values
	}
	if len(files) == 0 {
		// An empty monitoring/ would leave its Application pointing at a
		// path the bundle does not have.
		return nil, stack.Errors{s.MonitoringError("", "the monitoring block writes nothing: switch on a pack, add rules or alertmanager, or give an app with pods a dashboard")}
	}
	var objs []*Object
	for _, f := range files {
		if err := addGenerated(tree, f.Path, f.Data); err != nil {
			return nil, fmt.Errorf("generating monitoring: %w", err)
		}
		for _, doc := range splitDocuments(f.Data) {
			o, err := parseObject(doc, f.Path)
			if err != nil {
				return nil, fmt.Errorf("generating monitoring: %w", err)
			}
			if o != nil {
				objs = append(objs, o)
			}
		}
	}
	return objs, nil
}

// hasMonitoring reports whether monitoring/ has files: with the plain
// prometheus chart and no dashboards it has none, and nothing deploys it.
func hasMonitoring(tree *bundles.Tree) bool {
	for _, f := range tree.Files() {
		if strings.HasPrefix(f.Path, alerts.Dir+"/") {
			return true
		}
	}
	return false
}

// monitoringError places what it can of a monitoring error in the CUE.
func monitoringError(s *stack.Stack, err error) error {
	if failures, ok := errors.AsType[alerts.TestFailures](err); ok {
		return testErrors(s, failures)
	}
	if failures, ok := errors.AsType[alerts.BuiltinTestFailures](err); ok {
		var errs stack.Errors
		for _, e := range failures {
			if f, ok := errors.AsType[*alerts.BuiltinTestFailure](e); ok {
				errs = append(errs, s.MonitoringError(f.Field, "with these settings alert %s fails galley's test %q: %s: change the setting, or switch the alert off",
					f.Alert, f.Test, f.Msg))
			}
		}
		return errs
	}
	if am, ok := errors.AsType[*alerts.AlertmanagerError](err); ok {
		return stack.Errors{s.MonitoringError("alertmanager", "%v", am)}
	}
	// A built-in pack needs a source the stack does not declare: point at
	// the pack.
	var errs stack.Errors
	var walk func(error)
	walk = func(e error) {
		// Not errors.As: the walk collects every unprovided metric of the
		// joined tree, errors.As would stop at the first.
		if u, ok := e.(*alerts.UnprovidedError); ok { //nolint:errorlint // see above
			field := map[string]string{
				alerts.PackInfrastructure: "packs.infrastructure",
				alerts.PackDataJourney:    "packs.dataJourney",
				alerts.PackSecurity:       "packs.security",
			}[u.Pack]
			errs = append(errs, s.MonitoringError(field, "%v", u))
			return
		}
		switch w := e.(type) { //nolint:errorlint // walks the tree by hand, as above
		case interface{ Unwrap() []error }:
			for _, x := range w.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(w.Unwrap())
		}
	}
	walk(err)
	if len(errs) > 0 {
		return errs
	}
	return fmt.Errorf("generating monitoring: %w", err)
}

// prometheusChartValues are the values galley adds to the app that runs
// the plain prometheus chart: the stack's rules and routing.
func prometheusChartValues(s *stack.Stack, a *stack.App) (map[string]any, error) {
	m := s.Monitoring
	if m == nil || m.Prometheus == nil || m.Prometheus.App != a.Name {
		return nil, nil
	}
	o, err := monitoringOptions(s, nil)
	if err != nil {
		return nil, stack.Errors{s.MonitoringError("sources", "%v", err)}
	}
	v, err := o.ChartValues()
	if err != nil {
		return nil, monitoringError(s, err)
	}
	return v, nil
}

// monitoringApps is the Argo CD Application that deploys monitoring/, one
// wave after every app and job: the CRDs it needs come with them.
func monitoringApps(s *stack.Stack, waves map[string]int) []argocd.App {
	m := s.Monitoring
	if m == nil {
		return nil
	}
	wave := 0
	for _, w := range waves {
		wave = max(wave, w+1)
	}
	if m.SyncWave != nil {
		wave = *m.SyncWave
	}
	return []argocd.App{{Name: m.AppName, Namespace: m.Namespace, Path: alerts.Dir, Wave: wave}}
}

// monitoringOptions resolves the stack's references (apps, jobs) into what
// the alerts package generates from.
func monitoringOptions(s *stack.Stack, apps []*renderedApp) (alerts.Options, error) {
	m := s.Monitoring
	provided, err := alerts.NewProvided(m.SourceNames(), m.Sources.Metrics)
	if err != nil {
		return alerts.Options{}, err
	}
	o := alerts.Options{
		StackName:   s.Name,
		Namespace:   m.Namespace,
		Labels:      m.Labels,
		AlertLabels: m.AlertLabels,
		Ingress:     m.Sources.Ingress,
		Provided:    provided,
		RunbookBase: m.RunbookBase,
		Chart:       m.Prometheus != nil,
	}
	if p := m.Packs.Infrastructure; p != nil {
		o.Infrastructure = &alerts.Infrastructure{
			Namespaces:   namespacesOf(s, p.Apps, p.Namespaces),
			CrashLooping: check(p.CrashLooping),
			NotReady:     check(p.NotReady),
			ErrorRate:    check(p.ErrorRate),
			Latency:      check(p.Latency),
			CPU:          check(p.CPU),
			Memory:       check(p.Memory),
			Volume:       check(p.Volume),
		}
	}
	if p := m.Packs.DataJourney; p != nil {
		dj := &alerts.DataJourney{}
		airflowNS := ""
		if a := p.Airflow; a != nil {
			if app := s.App(a.App); app != nil {
				airflowNS = app.Namespace
			}
			dj.Airflow = &alerts.Airflow{Namespace: airflowNS, DAGRunFailed: check(a.DAGRunFailed), Window: a.Window}
		}
		if a := p.Airbyte; a != nil {
			ns := ""
			if app := s.App(a.App); app != nil {
				ns = app.Namespace
			}
			dj.Airbyte = &alerts.Airbyte{Namespace: ns, SyncFailed: check(a.SyncFailed), Window: a.Window}
		}
		if st := p.Streaming; st != nil {
			groups := slices.Clone(st.ConsumerGroups)
			if slices.Contains(slices.Collect(maps.Values(m.Sources.Apps)), "datahub") {
				groups = append(groups, alerts.DataHubConsumerGroups...)
			}
			dj.Streaming = &alerts.Streaming{ConsumerGroups: groups, Lag: check(st.Lag), Stalled: check(st.Stalled), Window: st.Window}
		}
		if j := p.Jobs; j != nil {
			dj.Jobs = &alerts.Jobs{Namespaces: namespacesOf(s, j.Apps, j.Namespaces), Failed: check(j.Failed)}
		}
		for _, name := range slices.Sorted(maps.Keys(p.Pipelines)) {
			pl := p.Pipelines[name]
			out := alerts.Pipeline{Name: name, SLA: pl.SLA, Freshness: pl.Freshness, Severity: pl.Severity, Runbook: pl.Runbook}
			switch {
			case pl.Airflow != nil:
				out.AirflowDAG, out.AirflowNamespace = pl.Airflow.DAG, airflowNS
			case pl.Job != "":
				if j := s.Job(pl.Job); j != nil {
					out.CronJob = &alerts.CronJob{Namespace: j.Namespace, Name: j.Name}
				}
			case pl.CronJob != nil:
				out.CronJob = &alerts.CronJob{Namespace: pl.CronJob.Namespace, Name: pl.CronJob.Name}
			case pl.LastSuccess != nil:
				out.LastSuccess = &alerts.Selector{Metric: pl.LastSuccess.Metric, Matchers: pl.LastSuccess.Matchers}
			}
			dj.Pipelines = append(dj.Pipelines, out)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Quality)) {
			q := p.Quality[name]
			dj.Quality = append(dj.Quality, alerts.Quality{
				Name:     name,
				Selector: alerts.Selector{Metric: q.Metric, Matchers: q.Matchers},
				Above:    q.Above, Below: q.Below,
				For: q.For, Severity: q.Severity, Summary: q.Summary, Runbook: q.Runbook,
			})
		}
		o.DataJourney = dj
	}
	if p := m.Packs.Security; p != nil {
		o.Security = &alerts.Security{
			Namespaces:      namespacesOf(s, p.Apps, p.Namespaces),
			APIUnauthorized: check(p.APIUnauthorized),
			APIForbidden:    check(p.APIForbidden),
			IngressDenied:   check(p.IngressDenied),
		}
	}
	o.Custom = customGroups(m.Rules)
	o.Tests = ruleTests(m.Rules)
	if am := m.Alertmanager; am != nil {
		o.Alertmanager = alertmanager(am)
	}
	if m.Dashboards.Enabled {
		o.Dashboards = dashboardApps(apps, m.Dashboards.Apps)
		for i, d := range o.Dashboards {
			o.Dashboards[i].Product = m.Sources.Apps[d.Name]
		}
	}
	return o, nil
}

// ruleTests are the stack's rule tests in promtool's format, by alert.
func ruleTests(rules []stack.Rule) map[string][]alerts.TestGroup {
	out := map[string][]alerts.TestGroup{}
	for _, r := range rules {
		for _, t := range r.Tests {
			tg := alerts.TestGroup{Name: t.Name, Interval: t.Interval}
			for _, s := range t.InputSeries {
				tg.InputSeries = append(tg.InputSeries, alerts.Series{Series: s.Series, Values: s.Values})
			}
			for _, e := range t.Expect {
				at := alerts.AlertTest{EvalTime: e.EvalTime, Alertname: r.Alert, ExpAlerts: []alerts.ExpAlert{}}
				for _, a := range e.Alerts {
					at.ExpAlerts = append(at.ExpAlerts, alerts.ExpAlert{ExpLabels: a.Labels, ExpAnnotations: a.Annotations})
				}
				tg.AlertTests = append(tg.AlertTests, at)
			}
			out[r.Alert] = append(out[r.Alert], tg)
		}
	}
	return out
}

// testErrors places each failed rule test at its expectation in the
// stack's CUE.
func testErrors(s *stack.Stack, failures alerts.TestFailures) error {
	var errs stack.Errors
	for _, f := range failures {
		field := "rules"
		for i, r := range s.Monitoring.Rules {
			if r.Alert == f.Alert && len(r.Tests) > 0 {
				field = fmt.Sprintf("rules[%d].tests[%d]", i, f.Test)
				if f.Expect >= 0 {
					field += fmt.Sprintf(".expect[%d]", f.Expect)
				}
				break
			}
		}
		errs = append(errs, s.MonitoringError(field, "alert test of %s failed: %s", f.Alert, f.Msg))
	}
	return errs
}

func check(c stack.Check) alerts.Check {
	return alerts.Check{Enabled: c.Enabled, For: c.For, Severity: c.Severity, Ratio: c.Ratio}
}

// namespacesOf is the namespaces of the named apps plus extra; with
// neither, every app's and job's namespace.
func namespacesOf(s *stack.Stack, appNames, extra []string) []string {
	set := map[string]bool{}
	for _, ns := range extra {
		set[ns] = true
	}
	for _, name := range appNames {
		if a := s.App(name); a != nil {
			set[a.Namespace] = true
		}
	}
	if len(appNames) == 0 && len(extra) == 0 {
		for _, a := range s.Apps {
			set[a.Namespace] = true
		}
		for _, j := range s.Jobs {
			set[j.Namespace] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// customGroups groups the stack's rules by their group, in name order,
// each group's rules in the stack's order.
func customGroups(rules []stack.Rule) []alerts.Group {
	byName := map[string]*alerts.Group{}
	for _, r := range rules {
		g := byName[r.Group]
		if g == nil {
			g = &alerts.Group{Name: r.Group}
			byName[r.Group] = g
		}
		labels := maps.Clone(r.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[alerts.SeverityLabel] = r.Severity
		g.Rules = append(g.Rules, alerts.Rule{
			Alert:         r.Alert,
			Expr:          r.Expr,
			For:           nonZero(r.For),
			KeepFiringFor: nonZero(r.KeepFiringFor),
			Labels:        labels,
			Annotations:   r.Annotations,
		})
	}
	var out []alerts.Group
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, *byName[name])
	}
	return out
}

// nonZero drops a zero duration: a rule without `for` fires at once.
func nonZero(d string) string {
	if v, err := model.ParseDuration(d); err == nil && v == 0 {
		return ""
	}
	return d
}

func alertmanager(am *stack.Alertmanager) *alerts.Alertmanager {
	out := &alerts.Alertmanager{Route: alerts.Route{
		Receiver:       am.Route.Receiver,
		GroupBy:        am.Route.GroupBy,
		GroupWait:      am.Route.GroupWait,
		GroupInterval:  am.Route.GroupInterval,
		RepeatInterval: am.Route.RepeatInterval,
	}}
	for _, r := range am.Route.Routes {
		out.Route.Routes = append(out.Route.Routes, alerts.SubRoute{
			Receiver: r.Receiver, Matchers: r.Matchers, Continue: r.Continue, RepeatInterval: r.RepeatInterval,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(am.Receivers)) {
		rc := am.Receivers[name]
		recv := alerts.Receiver{Name: name}
		for _, sl := range rc.Slack {
			recv.Slack = append(recv.Slack, alerts.Slack{
				Webhook: alerts.SecretKeyRef{Name: sl.Webhook.Name, Key: sl.Webhook.Key}, Channel: sl.Channel, SendResolved: sl.SendResolved,
			})
		}
		for _, e := range rc.Email {
			em := alerts.Email{
				To: e.To, From: e.From, Smarthost: e.Smarthost, AuthUsername: e.AuthUsername,
				RequireTLS: e.RequireTLS, SendResolved: e.SendResolved,
			}
			if e.AuthPassword != nil {
				em.AuthPassword = &alerts.SecretKeyRef{Name: e.AuthPassword.Name, Key: e.AuthPassword.Key}
			}
			recv.Email = append(recv.Email, em)
		}
		out.Receivers = append(out.Receivers, recv)
	}
	return out
}

// podControllers are the kinds whose pods a dashboard follows.
var podControllers = map[string]bool{
	"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true,
	"Job": true, "CronJob": true, "Pod": true,
}

// dashboardApps is the apps that get a dashboard: the named ones (all when
// none), each with the pod controllers in its namespace. An app with none
// has no golden signals and gets no dashboard.
func dashboardApps(apps []*renderedApp, only []string) []alerts.App {
	var out []alerts.App
	for _, r := range apps {
		if len(only) > 0 && !slices.Contains(only, r.app.Name) {
			continue
		}
		app := alerts.App{Name: r.app.Name, Namespace: r.app.Namespace}
		for _, o := range r.objects {
			if podControllers[o.Kind] && (o.Namespace == "" || o.Namespace == r.app.Namespace) {
				app.Workloads = append(app.Workloads, alerts.Workload{Kind: o.Kind, Name: o.Name})
			}
		}
		if len(app.Workloads) > 0 {
			out = append(out, app)
		}
	}
	return out
}

// AlertUnitTests is a `promtool test rules` file of the stack's rule tests,
// completed with the annotations the alerts fire with, for rule files at
// rulePaths: the same expectations the build checks in-process, for the
// real promtool.
func AlertUnitTests(s *stack.Stack, rulePaths []string) ([]byte, error) {
	if s.Monitoring == nil {
		return nil, fmt.Errorf("stack %s has no monitoring block", s.Name)
	}
	o, err := monitoringOptions(s, nil)
	if err != nil {
		return nil, err
	}
	packs, err := o.Groups()
	if err != nil {
		return nil, monitoringError(s, err)
	}
	var groups []alerts.Group
	for _, p := range packs {
		groups = append(groups, p.Groups...)
	}
	// Groups ran the tests already: a failure here cannot happen.
	done, err := alerts.RunTests(groups, o.Tests)
	if err != nil {
		return nil, fmt.Errorf("running rule tests: %w", err)
	}
	return alerts.UnitTestFile(rulePaths, done)
}
