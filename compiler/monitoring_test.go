package compiler_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

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

// serverFilesChart renders serverFiles into a ConfigMap the way the
// prometheus chart's templates/cm.yaml (prometheus-community/helm-charts)
// does, which is how Prometheus gets its rules files there.
const serverFilesChart = `{{- if .Values.serverFiles }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-server
data:
{{- range $key, $value := .Values.serverFiles }}
  {{ $key }}: |
{{ toYaml $value | default "{}" | indent 4 }}
{{- end }}
{{- end }}
`

// TestCompilePrometheusChart: with the plain prometheus chart, the rules
// go to its serverFiles (and from there to the server's ConfigMap, which
// promtool accepts) and the routing to its alertmanager config; no
// prometheus-operator object is written.
func TestCompilePrometheusChart(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.0.0"
	apps: {
		prometheus: {namespace: "monitoring", chart: path: "charts/prometheus"}
		bi: {namespace: "bi", chart: path: "charts/prometheus"}
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
		"charts/prometheus/Chart.yaml":        "apiVersion: v2\nname: prometheus\nversion: 0.1.0\n",
		"charts/prometheus/templates/cm.yaml": serverFilesChart,
	})
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	var cm []byte
	for _, f := range res.Tree.Files() {
		if strings.HasPrefix(f.Path, "monitoring/") || f.Path == "argocd/apps/monitoring.yaml" {
			t.Errorf("%s written: the plain chart needs no monitoring/ objects", f.Path)
		}
		if strings.HasPrefix(f.Path, "apps/prometheus/") && strings.Contains(string(f.Data), "kind: ConfigMap") {
			cm = f.Data
		}
		if strings.HasPrefix(f.Path, "apps/bi/") && strings.Contains(string(f.Data), "kind: ConfigMap") {
			t.Errorf("%s: another app got the rules", f.Path)
		}
	}
	var obj struct{ Data map[string]string }
	if err := yaml.Unmarshal(cm, &obj); err != nil || obj.Data["alerting_rules.yml"] == "" {
		t.Fatalf("no alerting_rules.yml in the server ConfigMap (%v):\n%s", err, cm)
	}
	rules := obj.Data["alerting_rules.yml"]
	for _, alert := range []string{"PodCrashLooping", "HTTPErrorRateHigh", "APIServerUnauthorizedRequests", "MetabaseDown"} {
		if !strings.Contains(rules, "alert: "+alert) {
			t.Errorf("alerting_rules.yml lacks %s", alert)
		}
	}
	p := filepath.Join(t.TempDir(), "alerting_rules.yml")
	if err := os.WriteFile(p, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, err := testtools.Run(t, "promtool", "check", "rules", "--lint=all", "--lint-fatal", p); err != nil {
		t.Errorf("promtool check rules: %v\n%s%s", err, stdout, stderr)
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
