package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/golden"
)

func ptr[T any](v T) *T { return &v }

// on is a check with the defaults of the stack schema.
func on(forDur, severity string, ratio float64) Check {
	return Check{Enabled: true, For: forDur, Severity: severity, Ratio: ratio}
}

func defaultInfrastructure(namespaces ...string) *Infrastructure {
	return &Infrastructure{
		Namespaces:   namespaces,
		CrashLooping: on("15m", "warning", 0),
		NotReady:     on("15m", "warning", 0),
		ErrorRate:    on("10m", "critical", 0.05),
		CPU:          on("15m", "warning", 0.9),
		Memory:       on("15m", "warning", 0.9),
		Volume:       on("5m", "warning", 0.85),
	}
}

var defaultHTTP = HTTPMetrics{Requests: "http_requests_total", CodeLabel: "code", Duration: "http_request_duration_seconds"}

// fullOptions switches everything on: every pack and every kind of
// pipeline, custom rules, routing and dashboards.
func fullOptions() Options {
	return Options{
		StackName:   "data-platform",
		Namespace:   "monitoring",
		Labels:      map[string]string{"release": "kube-prometheus-stack"},
		AlertLabels: map[string]string{"team": "analytics"},
		HTTP:        defaultHTTP,

		Infrastructure: defaultInfrastructure("orchestration", "bi"),
		DataJourney: &DataJourney{
			Airflow: &Airflow{Namespace: "orchestration", DAGRunFailed: on("0m", "critical", 0), Window: "15m"},
			Jobs:    &Jobs{Namespaces: []string{"orchestration", "bi"}, Failed: on("0m", "critical", 0)},
			Pipelines: []Pipeline{
				{Name: "warehouse", CronJob: &CronJob{Namespace: "orchestration", Name: "dbt-nightly"}, SLA: "90m", Freshness: "26h", Severity: "critical", Runbook: "https://runbooks.example.com/dbt"},
				{Name: "ingest", AirflowDAG: "ingest_raw", AirflowNamespace: "orchestration", SLA: "1h", Freshness: "25h", Severity: "critical"},
				{Name: "events", LastSuccess: &Selector{Metric: "warehouse_table_last_loaded_timestamp_seconds", Matchers: map[string]string{"table": "events", "schema": "raw"}}, Freshness: "2h", Severity: "warning"},
			},
			Quality: []Quality{
				{Name: "orders-nulls", Selector: Selector{Metric: "dbt_tests_failed", Matchers: map[string]string{"model": "orders"}}, Above: ptr(0.0), For: "0m", Severity: "warning"},
				{Name: "rows-loaded", Selector: Selector{Metric: "warehouse_rows_loaded"}, Below: ptr(1000.0), For: "1h", Severity: "critical", Summary: "Too few rows loaded: {{ $value }}", Runbook: "https://runbooks.example.com/rows"},
			},
		},
		Custom: []Group{{
			Name: "custom",
			Rules: []Rule{{
				Alert:       "AirflowSchedulerDown",
				Expr:        "sum(rate(airflow_scheduler_heartbeat{namespace=\"orchestration\"}[5m])) == 0\nor absent(airflow_scheduler_heartbeat{namespace=\"orchestration\"})",
				For:         "10m",
				Labels:      map[string]string{"severity": "critical", "team": "platform"},
				Annotations: map[string]string{"summary": "The Airflow scheduler sends no heartbeat", "runbook_url": "https://runbooks.example.com/airflow"},
			}},
		}, {
			Name: "warehouse",
			Rules: []Rule{{
				Alert:         "WarehouseConnectionsHigh",
				Expr:          `pg_stat_activity_count{namespace="orchestration"} > 80`,
				KeepFiringFor: "5m",
				Labels:        map[string]string{"severity": "warning"},
				Annotations:   map[string]string{"summary": "{{ $value }} connections to {{ $labels.datname }}"},
			}},
		}},
		Alertmanager: &Alertmanager{
			Receivers: []Receiver{
				{Name: "analytics-slack", Slack: []Slack{{Webhook: SecretKeyRef{Name: "alertmanager-slack", Key: "webhook-url"}, Channel: "#analytics-alerts", SendResolved: true}}},
				{Name: "analytics-email", Email: []Email{{
					To: "analytics@example.com", From: "alerts@example.com", Smarthost: "smtp.example.com:587",
					AuthUsername: "alerts@example.com", AuthPassword: &SecretKeyRef{Name: "alertmanager-smtp", Key: "password"},
					RequireTLS: true, SendResolved: true,
				}}},
				{Name: "blackhole"},
			},
			Route: Route{
				Receiver: "analytics-email", GroupBy: []string{"alertname", "namespace"},
				GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "4h",
				Routes: []SubRoute{
					{Receiver: "analytics-slack", Matchers: map[string]string{"severity": "critical"}, Continue: true},
					{Receiver: "blackhole", Matchers: map[string]string{"severity": "info", "team": "analytics"}, RepeatInterval: "24h"},
				},
			},
		},
		Dashboards: []App{
			{Name: "airflow", Namespace: "orchestration", Workloads: []Workload{{"Deployment", "airflow-scheduler"}, {"Deployment", "airflow-webserver"}, {"Job", "airflow-migrate-database"}}},
			{Name: "postgres", Namespace: "orchestration", Workloads: []Workload{{"StatefulSet", "postgres"}}},
		},
	}
}

// minimalOptions is one pack with some checks off and no routing.
func minimalOptions() Options {
	infra := defaultInfrastructure("web")
	infra.ErrorRate.Enabled = false
	infra.Volume.Enabled = false
	infra.CPU.Ratio = 0.75
	return Options{StackName: "shop", Namespace: "observability", HTTP: defaultHTTP, Infrastructure: infra}
}

var goldenCases = []struct {
	name string
	opts func() Options
}{
	{"full", fullOptions},
	{"minimal", minimalOptions},
}

// TestGolden compares Generate's files with testdata/golden/<case>.yaml,
// which holds every file after a "# File: <path>" line.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Generate(tc.opts())
			if err != nil {
				t.Fatal(err)
			}
			got := concat(files)
			golden.Check(t, filepath.Join("testdata", "golden", tc.name+".yaml"), got)
		})
	}
}

func concat(files []bundles.File) []byte {
	var b bytes.Buffer
	for i, f := range files {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString("# File: " + f.Path + "\n")
		b.Write(f.Data)
	}
	return b.Bytes()
}

// TestDeterministic: the order of every list and map in Options does not
// matter, and two runs give the same bytes.
func TestDeterministic(t *testing.T) {
	a, err := Generate(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	o := fullOptions()
	slices.Reverse(o.Infrastructure.Namespaces)
	slices.Reverse(o.DataJourney.Jobs.Namespaces)
	slices.Reverse(o.DataJourney.Pipelines)
	slices.Reverse(o.DataJourney.Quality)
	slices.Reverse(o.Alertmanager.Receivers)
	b, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(concat(a), concat(b)) {
		t.Fatal("reordering the options changed the output")
	}
}

// parsedRule is a PrometheusRule as the operator reads it.
type parsedRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name, Namespace string
		Labels          map[string]string
	}
	Spec struct {
		Groups []struct {
			Name  string
			Rules []map[string]any
		}
	}
}

// rulesOf returns every alert galley wrote, by PrometheusRule name.
func rulesOf(t *testing.T, files []bundles.File) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, f := range files {
		var head struct{ Kind string }
		mustYAML(t, f.Data, &head)
		if head.Kind != "PrometheusRule" {
			continue
		}
		var pr parsedRule
		mustYAML(t, f.Data, &pr)
		for _, g := range pr.Spec.Groups {
			out[pr.Metadata.Name] = append(out[pr.Metadata.Name], g.Rules...)
		}
	}
	return out
}

func alertNames(rules []map[string]any) []string {
	var names []string
	for _, r := range rules {
		names = append(names, r["alert"].(string))
	}
	return names
}

// TestPacks checks which alerts each pack configuration generates and
// what the settings change in them.
func TestPacks(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Options)
		rule  string   // PrometheusRule name
		want  []string // alert names, in order
		check func(t *testing.T, rules []map[string]any)
	}{{
		name: "infrastructure defaults",
		edit: func(o *Options) { o.Infrastructure = defaultInfrastructure("b", "a", "b") },
		rule: "s-infrastructure",
		want: []string{"PodCrashLooping", "PodNotReady", "HTTPErrorRateHigh", "ContainerCPUNearLimit", "ContainerMemoryNearLimit", "PersistentVolumeFillingUp"},
		check: func(t *testing.T, rules []map[string]any) {
			for _, r := range rules {
				if !strings.Contains(r["expr"].(string), `namespace=~"a|b"`) {
					t.Errorf("%s: expr does not select the namespaces once each: %s", r["alert"], r["expr"])
				}
			}
			wantFor(t, rules, "PodCrashLooping", "15m")
			wantFor(t, rules, "PersistentVolumeFillingUp", "5m")
			wantSeverity(t, rules, "HTTPErrorRateHigh", "critical")
			wantExprHas(t, rules, "HTTPErrorRateHigh", "> 0.05")
			wantExprHas(t, rules, "PersistentVolumeFillingUp", "> 0.85")
		},
	}, {
		name: "one namespace, thresholds and checks off",
		edit: func(o *Options) {
			p := defaultInfrastructure("web")
			p.CrashLooping.Enabled = false
			p.Memory.Enabled = false
			p.CPU = on("30m", "critical", 1.2)
			p.NotReady.For = "0m"
			o.Infrastructure = p
			o.HTTP = HTTPMetrics{Requests: "nginx_ingress_controller_requests", CodeLabel: "status", Duration: "x"}
		},
		rule: "s-infrastructure",
		want: []string{"PodNotReady", "HTTPErrorRateHigh", "ContainerCPUNearLimit", "PersistentVolumeFillingUp"},
		check: func(t *testing.T, rules []map[string]any) {
			wantExprHas(t, rules, "PodNotReady", `namespace="web"`)
			wantFor(t, rules, "PodNotReady", "")
			wantFor(t, rules, "ContainerCPUNearLimit", "30m")
			wantSeverity(t, rules, "ContainerCPUNearLimit", "critical")
			wantExprHas(t, rules, "ContainerCPUNearLimit", "> 1.2")
			wantExprHas(t, rules, "HTTPErrorRateHigh", `nginx_ingress_controller_requests{namespace="web", status=~"5.."}`)
		},
	}, {
		name: "airflow and jobs",
		edit: func(o *Options) {
			o.DataJourney = &DataJourney{
				Airflow: &Airflow{DAGRunFailed: on("", "warning", 0), Window: "1h"},
				Jobs:    &Jobs{Failed: on("5m", "critical", 0)},
			}
		},
		rule: "s-data-journey",
		want: []string{"AirflowDAGRunFailed", "JobFailed"},
		check: func(t *testing.T, rules []map[string]any) {
			// No namespace scope: every namespace.
			wantExprHas(t, rules, "AirflowDAGRunFailed", "increase(airflow_dagrun_failed_count[1h])")
			wantExprHas(t, rules, "AirflowDAGRunFailed", "unless airflow_dagrun_failed_count offset 1h")
			wantExprHas(t, rules, "JobFailed", `kube_job_failed{condition="true"}`)
			wantFor(t, rules, "JobFailed", "5m")
			wantSeverity(t, rules, "AirflowDAGRunFailed", "warning")
		},
	}, {
		name: "airflow and jobs off",
		edit: func(o *Options) {
			o.DataJourney = &DataJourney{
				Airflow: &Airflow{Window: "1h"},
				Jobs:    &Jobs{},
				Quality: []Quality{{Name: "q", Selector: Selector{Metric: "m"}, Below: ptr(-1.5), Severity: "info"}},
			}
		},
		rule: "s-data-journey",
		want: []string{"DataQualityThresholdBreached"},
		check: func(t *testing.T, rules []map[string]any) {
			wantExprHas(t, rules, "DataQualityThresholdBreached", "m < -1.5")
			wantSeverity(t, rules, "DataQualityThresholdBreached", "info")
		},
	}, {
		name: "pipelines, sorted by name",
		edit: func(o *Options) {
			o.DataJourney = &DataJourney{Pipelines: []Pipeline{
				{Name: "z-sla-only", CronJob: &CronJob{Namespace: "jobs", Name: "dbt"}, SLA: "2h", Severity: "warning"},
				{Name: "a-fresh-only", AirflowDAG: "d", Freshness: "1d", Severity: "critical"},
			}}
		},
		rule: "s-data-journey",
		want: []string{"DataNotFresh", "PipelineOverSLA"},
		check: func(t *testing.T, rules []map[string]any) {
			wantExprHas(t, rules, "DataNotFresh", `increase(airflow_dagrun_duration_count{dag_id="d"}[1d])`)
			wantExprHas(t, rules, "PipelineOverSLA", `owner_name="dbt"`)
			wantExprHas(t, rules, "PipelineOverSLA", "> 7200")
			for _, r := range rules {
				if r["labels"].(map[string]any)["pipeline"] == nil {
					t.Errorf("%s: no pipeline label", r["alert"])
				}
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{StackName: "s", Namespace: "monitoring", HTTP: defaultHTTP}
			tt.edit(&o)
			files, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			all := rulesOf(t, files)
			if len(all) != 1 {
				t.Fatalf("got PrometheusRules %v, want only %s", slices.Sorted(maps.Keys(all)), tt.rule)
			}
			rules := all[tt.rule]
			if got := alertNames(rules); !slices.Equal(got, tt.want) {
				t.Fatalf("alerts %v, want %v", got, tt.want)
			}
			for _, r := range rules {
				labels := r["labels"].(map[string]any)
				if labels[StackLabel] != "s" || labels[PackLabel] == nil || labels[SeverityLabel] == nil {
					t.Errorf("%s: labels %v lack galley's", r["alert"], labels)
				}
				ann := r["annotations"].(map[string]any)
				if ann["summary"] == nil || ann["description"] == nil {
					t.Errorf("%s: annotations %v lack summary or description", r["alert"], ann)
				}
			}
			tt.check(t, rules)
		})
	}
}

func find(t *testing.T, rules []map[string]any, alert string) map[string]any {
	t.Helper()
	for _, r := range rules {
		if r["alert"] == alert {
			return r
		}
	}
	t.Fatalf("no alert %s", alert)
	return nil
}

func wantFor(t *testing.T, rules []map[string]any, alert, want string) {
	t.Helper()
	got, _ := find(t, rules, alert)["for"].(string)
	if got != want {
		t.Errorf("%s: for %q, want %q", alert, got, want)
	}
}

func wantSeverity(t *testing.T, rules []map[string]any, alert, want string) {
	t.Helper()
	if got := find(t, rules, alert)["labels"].(map[string]any)["severity"]; got != want {
		t.Errorf("%s: severity %v, want %s", alert, got, want)
	}
}

func wantExprHas(t *testing.T, rules []map[string]any, alert, want string) {
	t.Helper()
	if got := find(t, rules, alert)["expr"].(string); !strings.Contains(got, want) {
		t.Errorf("%s: expr\n%s\ndoes not contain %s", alert, got, want)
	}
}

// TestCustomRules checks the labels galley puts on the stack's own rules
// and how they are grouped.
func TestCustomRules(t *testing.T) {
	tests := []struct {
		name       string
		alertLabel map[string]string
		rule       Rule
		wantLabels map[string]string
	}{{
		name:       "severity and galley labels",
		rule:       Rule{Alert: "A", Expr: "up == 0", Labels: map[string]string{"severity": "critical"}, Annotations: map[string]string{"summary": "s"}},
		wantLabels: map[string]string{"severity": "critical", StackLabel: "s", PackLabel: PackCustom},
	}, {
		name:       "stack-wide labels under the rule's own",
		alertLabel: map[string]string{"team": "data", "tier": "1"},
		rule:       Rule{Alert: "A", Expr: "up == 0", Labels: map[string]string{"severity": "info", "team": "web"}, Annotations: map[string]string{"summary": "s"}},
		wantLabels: map[string]string{"severity": "info", "team": "web", "tier": "1", StackLabel: "s", PackLabel: PackCustom},
	}, {
		name:       "galley's labels win",
		rule:       Rule{Alert: "A", Expr: "up == 0", Labels: map[string]string{"severity": "warning", StackLabel: "other", PackLabel: "x"}, Annotations: map[string]string{"summary": "s"}},
		wantLabels: map[string]string{"severity": "warning", StackLabel: "s", PackLabel: PackCustom},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{StackName: "s", Namespace: "monitoring", AlertLabels: tt.alertLabel, Custom: []Group{{Name: "g", Rules: []Rule{tt.rule}}}}
			files, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			rules := rulesOf(t, files)["s-custom"]
			if len(rules) != 1 {
				t.Fatalf("got %d rules", len(rules))
			}
			got := map[string]string{}
			for k, v := range rules[0]["labels"].(map[string]any) {
				got[k] = v.(string)
			}
			if !maps.Equal(got, tt.wantLabels) {
				t.Errorf("labels %v, want %v", got, tt.wantLabels)
			}
			if rules[0]["expr"] != tt.rule.Expr {
				t.Errorf("expr %q changed from %q", rules[0]["expr"], tt.rule.Expr)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string // regular expression
	}{
		{"bad stack name", func(o *Options) { o.StackName = "Data" }, `(?m)^stack name "Data": `},
		{"bad namespace", func(o *Options) { o.Namespace = "" }, `(?m)^namespace "": `},
		{"bad object label", func(o *Options) { o.Labels = map[string]string{"a b": "x"} }, `(?m)^object label "a b": `},
		{"bad alert label", func(o *Options) { o.AlertLabels = map[string]string{"team-name": "x"} }, `(?m)^alert label "team-name": not a Prometheus label name$`},
		{"reserved alert label", func(o *Options) { o.AlertLabels = map[string]string{"severity": "x"} }, `(?m)^alert label "severity": galley sets it$`},
		{"bad metric", func(o *Options) { o.HTTP.Requests = "http-requests" }, `(?m)^HTTP requests metric "http-requests": not a Prometheus metric name$`},
		{"infrastructure without namespaces", func(o *Options) { o.Infrastructure.Namespaces = nil }, `(?m)^infrastructure pack: no namespaces to watch$`},
		{"custom PromQL", func(o *Options) { o.Custom[0].Rules[0].Expr = "sum(rate(x[5m])" },
			`(?m)^custom rules: group custom: alert AirflowSchedulerDown: invalid PromQL "sum\(rate\(x\[5m\]\)": at byte 15: unclosed left parenthesis$`},
		{"custom template", func(o *Options) { o.Custom[0].Rules[0].Annotations["summary"] = "{{ $labels.pod }" },
			`(?m)^custom rules: group custom: alert AirflowSchedulerDown: annotation summary: unexpected "}" in operand$`},
		{"custom undefined variable", func(o *Options) { o.Custom[0].Rules[0].Annotations["summary"] = "{{ $pod }}" },
			`(?m)^custom rules: group custom: alert AirflowSchedulerDown: annotation summary: undefined variable "\$pod"$`},
		{"custom alert name", func(o *Options) { o.Custom[0].Rules[0].Alert = "Airflow down" }, `alert Airflow down: the alert name must be`},
		{"custom for", func(o *Options) { o.Custom[0].Rules[0].For = "5 minutes" }, `alert AirflowSchedulerDown: for: unknown unit " minutes" in duration "5 minutes"$`},
		{"custom severity", func(o *Options) { o.Custom[0].Rules[0].Labels["severity"] = "page" }, `(?m)^custom rule AirflowSchedulerDown: severity "page": want one of critical, warning, info$`},
		{"custom group twice", func(o *Options) { o.Custom[1].Name = "custom" }, `(?m)^custom rule group "custom": defined twice$`},
		{"pipeline without source", func(o *Options) { o.DataJourney.Pipelines[0].CronJob = nil },
			`(?m)^data-journey pack: pipeline warehouse: set exactly one of an Airflow DAG, a CronJob and a lastSuccess metric$`},
		{"pipeline without window", func(o *Options) { o.DataJourney.Pipelines[0].SLA, o.DataJourney.Pipelines[0].Freshness = "", "" },
			`(?m)^data-journey pack: pipeline warehouse: set an SLA, a freshness window or both$`},
		{"pipeline metric with an SLA", func(o *Options) { o.DataJourney.Pipelines[2].SLA = "1h" }, `pipeline events: an SLA needs an Airflow DAG or a CronJob$`},
		{"zero freshness", func(o *Options) { o.DataJourney.Pipelines[0].Freshness = "0s" }, `pipeline warehouse: freshness: must be longer than zero$`},
		{"quality with both bounds", func(o *Options) { o.DataJourney.Quality[0].Below = ptr(1.0) }, `quality check orders-nulls: set exactly one of above and below$`},
		{"unknown receiver", func(o *Options) { o.Alertmanager.Route.Routes[0].Receiver = "pager" }, `(?m)^alertmanager: route 0: receiver "pager" is not defined$`},
		{"route without matchers", func(o *Options) { o.Alertmanager.Route.Routes[1].Matchers = nil }, `(?m)^alertmanager: route 1: no matchers: it would take every alert$`},
		{"receiver twice", func(o *Options) { o.Alertmanager.Receivers[2].Name = "analytics-slack" }, `(?m)^alertmanager: receiver "analytics-slack": defined twice$`},
		{"bad secret name", func(o *Options) { o.Alertmanager.Receivers[0].Slack[0].Webhook.Name = "Slack_Secret" }, `receiver analytics-slack: slack 0 webhook: Secret name "Slack_Secret": `},
		{"password without user", func(o *Options) { o.Alertmanager.Receivers[1].Email[0].AuthUsername = "" }, `receiver analytics-email: email 0: a password needs a user name$`},
		{"bad smarthost", func(o *Options) { o.Alertmanager.Receivers[1].Email[0].Smarthost = "smtp.example.com" }, `email 0: smarthost "smtp.example.com": want host:port$`},
		{"dashboard without workloads", func(o *Options) { o.Dashboards[0].Workloads = nil }, `(?m)^dashboard of app airflow: no workloads$`},
		{"dashboard of a Service", func(o *Options) { o.Dashboards[0].Workloads = []Workload{{"Service", "airflow"}} }, `dashboard of app airflow: workload Service airflow: not a pod controller$`},
		{"dashboard app twice", func(o *Options) { o.Dashboards[1].Name = "airflow" }, `(?m)^dashboard app "airflow": defined twice$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fullOptions()
			tt.edit(&o)
			files, err := Generate(o)
			if err == nil {
				t.Fatalf("got %d files and no error, want an error matching %s", len(files), tt.want)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("got error:\n%v\nwant it to match:\n%s", err, tt.want)
			}
		})
	}
}

func TestParseExpr(t *testing.T) {
	tests := []struct {
		expr    string
		offset  int
		message string // "" for valid
	}{
		{`up == 0`, 0, ""},
		{`sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) > 0.05`, 0, ""},
		{`sum(rate(x[5m])`, 15, "unclosed left parenthesis"},
		{`sum(rate(x[5m]) by (job)`, 16, "unexpected <by> in aggregation"},
		{"sum by (job) (\n  rate(x[5m]))\n) > 0", 30, "unexpected right parenthesis ')'"},
		{`rate(x[5 minutes])`, 9, "unexpected character: 'm'"},
		{`up{job="a"`, 10, "unexpected end of input inside braces"},
		{`nosuchfunction(up)`, 0, `unknown function with name "nosuchfunction"`},
		// Experimental functions are off, as in promtool by default.
		{`sort_by_label(up, "job")`, 0, `function "sort_by_label" is not enabled`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			err := ParseExpr(tt.expr)
			if tt.message == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v (%T), want an *ExprError", err, err)
			}
			if ee.Offset != tt.offset || !strings.Contains(ee.Msg, tt.message) {
				t.Errorf("got offset %d %q, want %d %q", ee.Offset, ee.Msg, tt.offset, tt.message)
			}
		})
	}
}

func TestCheckTemplate(t *testing.T) {
	tests := []struct {
		text string
		want string // "" for valid
	}{
		{"no template at all", ""},
		{"{{ $labels.namespace }}/{{ $labels.pod }} uses {{ $value | humanizePercentage }}", ""},
		{"{{ $externalURL }} {{ $externalLabels.cluster }}", ""},
		{`{{ if gt $value 1.0 }}many{{ else }}one{{ end }}`, ""},
		{"{{ $labels.pod }", `unexpected "}" in operand`},
		{"{{ $pod }}", `undefined variable "$pod"`},
		{"{{ if $value }}unclosed", "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			err := CheckTemplate("A", tt.text)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestObjects reads every object back and checks what Prometheus,
// Alertmanager and Grafana need from it.
func TestObjects(t *testing.T) {
	o := fullOptions()
	files, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, f := range files {
		if !strings.HasPrefix(f.Path, Dir+"/") || !strings.HasSuffix(f.Path, ".yaml") || strings.Count(f.Path, "/") != 1 {
			t.Errorf("%s: want monitoring/<file>.yaml", f.Path)
		}
		var obj struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string
			Metadata   struct {
				Name, Namespace string
				Labels          map[string]string
			}
			Data map[string]string
		}
		mustYAML(t, f.Data, &obj)
		kinds = append(kinds, obj.Kind)
		if want := strings.ToLower(obj.Kind) + "-" + obj.Metadata.Name + ".yaml"; filepath.Base(f.Path) != want {
			t.Errorf("%s: want file name %s", f.Path, want)
		}
		if obj.Metadata.Namespace != o.Namespace || obj.Metadata.Labels["release"] != "kube-prometheus-stack" {
			t.Errorf("%s: metadata %+v", f.Path, obj.Metadata)
		}
		if obj.Kind != "ConfigMap" {
			continue
		}
		if obj.Metadata.Labels[DashboardLabel] != "1" || len(obj.Data) != 1 {
			t.Errorf("%s: not a dashboard ConfigMap: %+v", f.Path, obj)
		}
		for name, js := range obj.Data {
			checkDashboard(t, name, js)
		}
	}
	want := []string{"AlertmanagerConfig", "ConfigMap", "ConfigMap", "PrometheusRule", "PrometheusRule", "PrometheusRule"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	// Credentials are Secret key references, never values.
	for _, f := range files {
		if !strings.Contains(f.Path, "alertmanagerconfig") {
			continue
		}
		var am struct {
			Spec struct {
				Receivers []struct {
					SlackConfigs []struct {
						APIURL map[string]string `yaml:"apiURL"`
					} `yaml:"slackConfigs"`
					EmailConfigs []struct {
						AuthPassword map[string]string `yaml:"authPassword"`
					} `yaml:"emailConfigs"`
				}
			}
		}
		mustYAML(t, f.Data, &am)
		r := am.Spec.Receivers
		if len(r) != 3 || !maps.Equal(r[0].EmailConfigs[0].AuthPassword, map[string]string{"name": "alertmanager-smtp", "key": "password"}) ||
			!maps.Equal(r[1].SlackConfigs[0].APIURL, map[string]string{"name": "alertmanager-slack", "key": "webhook-url"}) {
			t.Errorf("receivers %+v: want Secret key references", r)
		}
		if bytes.Contains(f.Data, []byte("://")) {
			t.Errorf("%s holds a URL:\n%s", f.Path, f.Data)
		}
	}
}

func checkDashboard(t *testing.T, name, js string) {
	t.Helper()
	var d struct {
		UID    string
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr, RefID string }
		}
	}
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatalf("%s: invalid JSON: %v", name, err)
	}
	if d.UID == "" || len(d.UID) > 40 || d.Title == "" {
		t.Errorf("%s: uid %q title %q", name, d.UID, d.Title)
	}
	if len(d.Panels) != 6 {
		t.Errorf("%s: %d panels, want the 6 golden-signal panels", name, len(d.Panels))
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if err := ParseExpr(tg.Expr); err != nil {
				t.Errorf("%s: panel %s: %v", name, p.Title, err)
			}
		}
	}
}

// TestPodRegexp checks the pod names each kind of controller gives against
// the regular expression dashboards select them with.
func TestPodRegexp(t *testing.T) {
	ws := []Workload{{"Deployment", "airflow-scheduler"}, {"StatefulSet", "postgres"}, {"Job", "migrate"}, {"CronJob", "dbt"}, {"DaemonSet", "agent"}, {"Pod", "debug"}}
	expr, err := podRegexp(ws)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("^(?:" + expr + ")$") // Prometheus anchors it so
	for name, want := range map[string]bool{
		"airflow-scheduler-7d4b9c8f6-x2x9k":   true,
		"postgres-0":                          true,
		"postgres-12":                         true,
		"migrate-q7x2z":                       true,
		"migrate-3-q7x2z":                     true,  // indexed Job
		"migrate-abcde":                       false, // vowels are never random
		"dbt-28912345-k2x7q":                  true,
		"agent-f7x2p":                         true,
		"debug":                               true,
		"airflow-scheduler-db-0":              false,
		"postgres-replica-0":                  false,
		"airflow-scheduler-7d4b9c8f6-x2x9k-x": false,
		"debug-1":                             false,
		"airflow-webserver-7d4b9c8f6-x2x9k":   false,
	} {
		if got := re.MatchString(name); got != want {
			t.Errorf("%s: match %v, want %v (regexp %s)", name, got, want, expr)
		}
	}
}

func TestDashboardUID(t *testing.T) {
	short := dashboardUID("data", "airflow")
	long := dashboardUID(strings.Repeat("s", 40), "airflow")
	long2 := dashboardUID(strings.Repeat("s", 40), "airflow2")
	if short != "data-airflow" || len(long) > 40 || long == long2 {
		t.Errorf("uids %q %q %q", short, long, long2)
	}
}

func mustYAML(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

func BenchmarkGenerate(b *testing.B) {
	o := fullOptions()
	for b.Loop() {
		if _, err := Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}
