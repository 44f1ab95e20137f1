package compiler_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testtools"
)

// TestCompileExampleMonitoring checks the monitoring/ of the example stack
// end to end: the files, the Argo CD Application that deploys them after
// every app and job, and the real promtool on every rule file.
func TestCompileExampleMonitoring(t *testing.T) {
	res, err := compiler.Compile(context.Background(), filepath.Join(repoRoot(t), "examples", "data-platform"), opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, ""))
	}
	var files []string
	var maxWave int
	var monitoringApp struct {
		Metadata struct{ Annotations map[string]string }
		Spec     struct {
			Source      struct{ Path string }
			Destination struct{ Namespace string }
		}
	}
	dir := t.TempDir()
	var rulesFiles []string
	for _, f := range res.Tree.Files() {
		name, data := f.Path, f.Data
		switch {
		case strings.HasPrefix(name, "monitoring/"):
			files = append(files, strings.TrimPrefix(name, "monitoring/"))
			if p := rulesFile(t, dir, name, data); p != "" {
				rulesFiles = append(rulesFiles, p)
			}
		case name == "argocd/apps/monitoring.yaml":
			if err := yaml.Unmarshal(data, &monitoringApp); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(name, "argocd/apps/") && name != "argocd/apps/project.yaml" && name != "argocd/apps/monitoring.yaml":
			var app struct {
				Metadata struct{ Annotations map[string]string }
			}
			if err := yaml.Unmarshal(data, &app); err != nil {
				t.Fatal(err)
			}
			w, _ := strconv.Atoi(app.Metadata.Annotations["argocd.argoproj.io/sync-wave"])
			maxWave = max(maxWave, w)
		}
	}
	want := []string{
		"alertmanagerconfig-data-platform.yaml",
		"configmap-data-platform-dashboard-airflow.yaml",
		"configmap-data-platform-dashboard-metabase.yaml",
		"configmap-data-platform-dashboard-overview.yaml",
		"configmap-data-platform-dashboard-postgres.yaml",
		"prometheusrule-data-platform-custom.yaml",
		"prometheusrule-data-platform-data-journey.yaml",
		"prometheusrule-data-platform-infrastructure.yaml",
		"prometheusrule-data-platform-security.yaml",
	}
	if !slices.Equal(files, want) {
		t.Errorf("monitoring/ holds %v, want %v", files, want)
	}
	s := monitoringApp.Spec
	if s.Source.Path != "monitoring" || s.Destination.Namespace != "monitoring" {
		t.Errorf("monitoring Application: source %+v, destination %+v", s.Source, s.Destination)
	}
	if w, err := strconv.Atoi(monitoringApp.Metadata.Annotations["argocd.argoproj.io/sync-wave"]); err != nil || w <= maxWave {
		t.Errorf("monitoring Application wave %d (%v), want after the last wave of the apps and jobs, %d", w, err, maxWave)
	}
	if _, stderr, err := testtools.Run(t, "promtool", append([]string{"check", "rules", "--lint=all", "--lint-fatal"}, rulesFiles...)...); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}

	// The example's rule tests, which the build ran in-process, pass in
	// the real promtool over the same rule files.
	st, err := stack.Load(context.Background(), filepath.Join(repoRoot(t), "examples", "data-platform"))
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, p := range rulesFiles {
		rel = append(rel, filepath.Base(p))
	}
	tests, err := compiler.AlertUnitTests(st, rel)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tests), "alertname: AirflowSchedulerDown") {
		t.Fatalf("no test of AirflowSchedulerDown:\n%s", tests)
	}
	p := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(p, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, err := testtools.Run(t, "promtool", "test", "rules", p); err != nil || !strings.Contains(stdout+stderr, "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s%s\n%s", err, stdout, stderr, tests)
	}
}

// rulesFile writes the spec.groups of a PrometheusRule to dir as a
// Prometheus rules file, or returns "" for another kind.
func rulesFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	var obj struct {
		Kind string
		Spec struct {
			Groups []any `yaml:"groups"`
		}
	}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if obj.Kind != "PrometheusRule" {
		return ""
	}
	b, err := yaml.Marshal(map[string]any{"groups": obj.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(name))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompileBadPromQL: a PromQL error stops the build and points at the
// CUE line and column of the mistake, as `galley vet` does.
func TestCompileBadPromQL(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: r: {namespace: "n", chart: path: "charts/r"}
	monitoring: rules: [{
		alert: "Down"
		expr:  "sum(up{job=\"r\"} == 0"
		annotations: summary: "r is down"
	}]
}
`,
		"charts/r/Chart.yaml": "apiVersion: v2\nname: r\nversion: 0.1.0\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	var errs stack.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one stack error", err)
	}
	got := stack.FormatError(err, dir)
	// The parenthesis is missing at the end of the input, where the
	// closing quote is, past the escaped quotes.
	if want := "stack.cue:9:33: stack.monitoring.rules[0].expr: invalid PromQL: unclosed left parenthesis"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCompileEmptyMonitoring: a monitoring block that writes nothing is an
// error, not an Application pointing at a missing monitoring/.
func TestCompileEmptyMonitoring(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: r: {namespace: "n", chart: path: "charts/r"}
	monitoring: {}
	delivery: argocd: repository: "oci://registry.example.com/s"
}
`,
		"charts/r/Chart.yaml":        "apiVersion: v2\nname: r\nversion: 0.1.0\n",
		"charts/r/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	got := stack.FormatError(err, dir)
	if want := "stack.cue:7:2: stack.monitoring: the monitoring block writes nothing"; !strings.HasPrefix(got, want) {
		t.Errorf("got  %s\nwant %s...", got, want)
	}
}

// TestCompileRuleTests: a stack rule's unit tests run at build; a failed
// expectation stops the build at its place in the CUE, and a rule on a
// metric no source provides stops it at the metric.
func TestCompileRuleTests(t *testing.T) {
	for _, tc := range []struct {
		name, rule, extra, want string
	}{{
		name: "passing test",
		rule: `{
		alert: "Down"
		expr:  "sum(rate(jetty_requests_total[5m])) == 0"
		annotations: summary: "no requests"
		tests: [{
			inputSeries: [{series: "jetty_requests_total", values: "0+10x10 100x20"}]
			expect: [{evalTime: "5m", alerts: []}, {evalTime: "25m", alerts: [{labels: {severity: "warning", galley_stack: "s", galley_pack: "custom"}}]}]
		}]
	}`,
	}, {
		name: "failing test",
		rule: `{
		alert: "Down"
		expr:  "sum(rate(jetty_requests_total[5m])) == 0"
		annotations: summary: "no requests"
		tests: [{
			inputSeries: [{series: "jetty_requests_total", values: "0+10x30"}]
			expect: [{evalTime: "5m", alerts: []},
				{evalTime: "25m", alerts: [{labels: {severity: "warning", galley_stack: "s", galley_pack: "custom"}}]}]
		}]
	}`,
		want: `stack.cue:16:5: stack.monitoring.rules[0].tests[0].expect[1]: alert test of Down failed: at 25m: expected alert {galley_pack="custom", galley_stack="s", severity="warning"} did not fire`,
	}, {
		name: "metric nothing provides",
		rule: `{
		alert: "Down"
		expr:  "sum(rate(http_requests_total[5m])) == 0"
		annotations: summary: "no requests"
	}`,
		want: `stack.cue:11:20: stack.monitoring.rules[0].expr: the rule reads http_requests_total, which no source of the stack provides: no app galley knows exposes http_requests_total: if the cluster provides it, list it in monitoring.sources.metrics`,
	}, {
		name:  "built-in pack without its source",
		extra: `packs: dataJourney: streaming: consumerGroups: ["loader"]`,
		want: `stack.cue:10:10: stack.monitoring.packs.dataJourney: group galley-data-journey: alert KafkaConsumerLagHigh reads kafka_consumergroup_lag, which no source of the stack provides: kafka_consumergroup_lag come from danielqsj/kafka_exporter (bitnami kafka chart: metrics.kafka.enabled, or the prometheus-kafka-exporter chart): add "kafka-exporter" to monitoring.sources.cluster
stack.cue:10:10: stack.monitoring.packs.dataJourney: group galley-data-journey: alert KafkaConsumerStalled reads kafka_consumergroup_current_offset, kafka_consumergroup_lag, which no source of the stack provides: kafka_consumergroup_current_offset, kafka_consumergroup_lag come from danielqsj/kafka_exporter (bitnami kafka chart: metrics.kafka.enabled, or the prometheus-kafka-exporter chart): add "kafka-exporter" to monitoring.sources.cluster`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: bi: {namespace: "bi", chart: path: "charts/r"}, kubernetes: apiVersions: ["monitoring.coreos.com/v1"]
	monitoring: {
		sources: apps: bi: "metabase"
		rules: [` + tc.rule + `]
		` + tc.extra + `
	}
}
`,
				"charts/r/Chart.yaml": "apiVersion: v2\nname: r\nversion: 0.1.0\n",
			})
			_, err := compiler.Compile(context.Background(), dir, opts())
			if tc.want == "" {
				if err != nil {
					t.Fatal(stack.FormatError(err, dir))
				}
				return
			}
			if got := stack.FormatError(err, dir); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// valuesProbe is a chart that shows the values Helm hands it, as one
// ConfigMap: what galley merges into the app that runs the prometheus
// chart, seen from inside Helm. It is not the prometheus chart, and does
// not pretend to render what that chart renders.
const valuesProbe = `apiVersion: v1
kind: ConfigMap
metadata:
  name: values-probe
data:
  values.yaml: {{ toYaml .Values | quote }}
`

// chartConfigDir is where the prometheus chart (prometheus-community
// helm-charts, charts/prometheus) mounts its server ConfigMap, one file per
// serverFiles key: templates/cm.yaml writes each key's value with toYaml,
// templates/deploy.yaml mounts the ConfigMap as config-volume at
// /etc/config and runs --config.file=/etc/config/prometheus.yml
// (server.configPath).
const chartConfigDir = "/etc/config"

// chartRuleFiles are the rule_files of the chart's default prometheus.yml
// (values.yaml, serverFiles."prometheus.yml".rule_files, unchanged since
// chart 9.5): the rules files the server loads unless the stack replaces
// its prometheus.yml.
var chartRuleFiles = []string{
	"/etc/config/recording_rules.yml",
	"/etc/config/alerting_rules.yml",
	"/etc/config/rules",
	"/etc/config/alerts",
}

// TestCompilePrometheusChart: with the plain prometheus chart, galley
// writes no prometheus-operator object; the rules go to the chart's
// serverFiles under a key its default prometheus.yml loads, and the
// routing to its alertmanager config. The real Prometheus config loader
// (in-process and `promtool check config`) reads a prometheus.yml with the
// chart's rule_files over the files the chart would mount, and finds every
// rule; Alertmanager's loader reads the routing.
//
// Not checked: the chart's own templates (the prometheus chart is not in
// the shared chart corpus, and the module proxy does not serve
// prometheus-community/helm-charts), so the ConfigMap itself is not
// rendered; docs/monitoring.md says so.
func TestCompilePrometheusChart(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: {
		prometheus: {namespace: "monitoring", chart: path: "charts/probe"}
		bi: {namespace: "bi", chart: path: "charts/probe"}
	}
	monitoring: {
		prometheus: app: "prometheus"
		sources: {apps: bi: "metabase", ingress: "ingress-nginx"}
		packs: {infrastructure: {}, security: {}}
		rules: [{
			alert: "MetabaseDown"
			expr:  "sum(rate(jetty_requests_total[5m])) == 0"
			annotations: summary: "no requests"
		}]
		alertmanager: {
			receivers: slack: slack: [{webhook: {name: "alertmanager-slack", key: "url"}}]
			route: receiver: "slack"
		}
		dashboards: enabled: false
	}
	delivery: argocd: repository: "oci://registry.example.com/s"
}
`,
		"charts/probe/Chart.yaml":            "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
		"charts/probe/templates/values.yaml": valuesProbe,
	})
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	var values struct {
		ServerFiles  map[string]any `yaml:"serverFiles"`
		Alertmanager struct {
			Config            map[string]any `yaml:"config"`
			ExtraSecretMounts []struct {
				SecretName string `yaml:"secretName"`
				MountPath  string `yaml:"mountPath"`
			} `yaml:"extraSecretMounts"`
		} `yaml:"alertmanager"`
	}
	probed := 0
	for _, f := range res.Tree.Files() {
		if strings.HasPrefix(f.Path, "monitoring/") || f.Path == "argocd/apps/monitoring.yaml" {
			t.Errorf("%s written: the plain chart needs no monitoring/ objects", f.Path)
		}
		if !strings.Contains(string(f.Data), "name: values-probe") {
			continue
		}
		var cm struct{ Data map[string]string }
		if err := yaml.Unmarshal(f.Data, &cm); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(f.Path, "apps/prometheus/"):
			if err := yaml.Unmarshal([]byte(cm.Data["values.yaml"]), &values); err != nil {
				t.Fatal(err)
			}
			probed++
		case strings.Contains(cm.Data["values.yaml"], "serverFiles"):
			t.Errorf("%s: another app got the rules", f.Path)
		}
	}
	if probed != 1 {
		t.Fatalf("found %d values of the prometheus app, want 1", probed)
	}

	// Every serverFiles key galley sets is a file the default layout loads.
	cfgDir := t.TempDir()
	var ruleFiles []string
	for _, p := range chartRuleFiles {
		ruleFiles = append(ruleFiles, filepath.Join(cfgDir, strings.TrimPrefix(p, chartConfigDir+"/")))
	}
	for key, v := range values.ServerFiles {
		p := filepath.Join(cfgDir, key)
		if !slices.Contains(ruleFiles, p) {
			t.Errorf("serverFiles[%q]: the chart's prometheus.yml loads no such rules file (%v)", key, chartRuleFiles)
		}
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := values.ServerFiles["alerting_rules.yml"]; !ok {
		t.Fatalf("no serverFiles[alerting_rules.yml] in %v", slices.Sorted(maps.Keys(values.ServerFiles)))
	}
	// The chart's values.yaml sets each of the other keys to {}, and its
	// cm.yaml writes them: the server finds every file it lists.
	for _, p := range ruleFiles {
		if _, ok := values.ServerFiles[filepath.Base(p)]; !ok {
			if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	promYAML, err := yaml.Marshal(map[string]any{"rule_files": ruleFiles})
	if err != nil {
		t.Fatal(err)
	}
	promPath := filepath.Join(cfgDir, "prometheus.yml")
	if err := os.WriteFile(promPath, promYAML, 0o644); err != nil {
		t.Fatal(err)
	}

	// In-process: Prometheus's config loader, then its rules file parser
	// on every file the config names that exists, as the server does.
	cfg, err := promconfig.LoadFile(promPath, false, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	alertNames := map[string]bool{}
	for _, pattern := range cfg.RuleFiles {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			groups, errs := rulefmt.ParseFile(m, false, model.LegacyValidation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
			if len(errs) > 0 {
				t.Fatalf("%s: %v", m, errors.Join(errs...))
			}
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					alertNames[r.Alert] = true
				}
			}
		}
	}
	for _, alert := range []string{"PodCrashLooping", "HTTPErrorRateHigh", "APIServerUnauthorizedRequests", "MetabaseDown"} {
		if !alertNames[alert] {
			t.Errorf("the rules Prometheus loads lack %s", alert)
		}
	}

	// The real promtool: check config also checks each rules file it loads.
	stdout, stderr, err := testtools.Run(t, "promtool", "check", "config", "--lint=all", "--lint-fatal", promPath)
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s%s", err, stdout, stderr)
	}
	want := fmt.Sprintf("Checking %s\n  SUCCESS: %d rules found", filepath.Join(cfgDir, "alerting_rules.yml"), len(alertNames))
	if !strings.Contains(stdout, fmt.Sprintf("SUCCESS: %d rule files found", len(chartRuleFiles))) || !strings.Contains(stdout, want) {
		t.Errorf("promtool check config output lacks %q:\n%s", want, stdout)
	}

	// The routing: Alertmanager's loader, and the Secret it reads mounted.
	amYAML, err := yaml.Marshal(values.Alertmanager.Config)
	if err != nil {
		t.Fatal(err)
	}
	am, err := amconfig.Load(string(amYAML))
	if err != nil {
		t.Fatalf("Alertmanager rejects alertmanager.config: %v\n%s", err, amYAML)
	}
	file := am.Receivers[0].SlackConfigs[0].APIURLFile
	if m := values.Alertmanager.ExtraSecretMounts; len(m) != 1 || m[0].SecretName != "alertmanager-slack" || !strings.HasPrefix(file, m[0].MountPath+"/") {
		t.Errorf("slack api_url_file %s, secret mounts %+v", file, m)
	}
}

// TestCompileAlertmanagerRejected: routing that Alertmanager's own loader
// refuses stops the build at the stack's alertmanager block, with
// Alertmanager's reason.
func TestCompileAlertmanagerRejected(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: bi: {namespace: "bi", chart: path: "charts/r"}, kubernetes: apiVersions: ["monitoring.coreos.com/v1"]
	monitoring: {
		packs: infrastructure: {}
		alertmanager: {
			receivers: slack: slack: [{webhook: {name: "alertmanager-slack", key: "url"}}]
			route: {receiver: "slack", groupInterval: "0s"}
		}
	}
}
`,
		"charts/r/Chart.yaml": "apiVersion: v2\nname: r\nversion: 0.1.0\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	want := "stack.cue:9:3: stack.monitoring.alertmanager: alertmanager: Alertmanager's configuration loader rejects the routing: group_interval cannot be zero"
	if got := stack.FormatError(err, dir); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCompileBuiltinTestFails: a pack setting with which a built-in alert
// cannot do its job stops the build at that setting, with the test that
// failed.
func TestCompileBuiltinTestFails(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: bi: {namespace: "bi", chart: path: "charts/r"}, kubernetes: apiVersions: ["monitoring.coreos.com/v1"]
	monitoring: {
		sources: ingress: "ingress-nginx"
		packs: infrastructure: errorRate: ratio: 1
	}
}
`,
		"charts/r/Chart.yaml": "apiVersion: v2\nname: r\nversion: 0.1.0\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	want := `stack.cue:9:26: stack.monitoring.packs.infrastructure.errorRate: with these settings alert HTTPErrorRateHigh fails galley's test "fires on failing series": at 16m: expected alert`
	if got := stack.FormatError(err, dir); !strings.HasPrefix(got, want) {
		t.Errorf("got  %s\nwant %s...", got, want)
	}
}
