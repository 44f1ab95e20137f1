package compiler

import (
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/common/model"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler/alerts"
	"github.com/galley-dev/galley/compiler/argocd"
	"github.com/galley-dev/galley/compiler/stack"
)

// addMonitoring writes monitoring/ for a stack with a monitoring block.
func addMonitoring(tree *bundles.Tree, s *stack.Stack, apps []*renderedApp) error {
	if s.Monitoring == nil {
		return nil
	}
	files, err := alerts.Generate(monitoringOptions(s, apps))
	if err != nil {
		return fmt.Errorf("generating monitoring: %w", err)
	}
	if len(files) == 0 {
		// An empty monitoring/ would leave its Application pointing at a
		// path the bundle does not have.
		return stack.Errors{s.MonitoringError("", "the monitoring block writes nothing: switch on a pack, add rules or alertmanager, or give an app with pods a dashboard")}
	}
	for _, f := range files {
		if err := addGenerated(tree, f.Path, f.Data); err != nil {
			return fmt.Errorf("generating monitoring: %w", err)
		}
	}
	return nil
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
func monitoringOptions(s *stack.Stack, apps []*renderedApp) alerts.Options {
	m := s.Monitoring
	o := alerts.Options{
		StackName:   s.Name,
		Namespace:   m.Namespace,
		Labels:      m.Labels,
		AlertLabels: m.AlertLabels,
		HTTP:        alerts.HTTPMetrics{Requests: m.HTTP.Requests, CodeLabel: m.HTTP.CodeLabel, Duration: m.HTTP.Duration},
	}
	if p := m.Packs.Infrastructure; p != nil {
		o.Infrastructure = &alerts.Infrastructure{
			Namespaces:   namespacesOf(s, p.Apps, p.Namespaces),
			CrashLooping: check(p.CrashLooping),
			NotReady:     check(p.NotReady),
			ErrorRate:    check(p.ErrorRate),
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
	o.Custom = customGroups(m.Rules)
	if am := m.Alertmanager; am != nil {
		o.Alertmanager = alertmanager(am)
	}
	if m.Dashboards.Enabled {
		o.Dashboards = dashboardApps(apps, m.Dashboards.Apps)
	}
	return o
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
