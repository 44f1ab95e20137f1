package alerts

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galley-dev/galley/internal/testtools"
)

// alertLabels are the labels galley puts on an alert of fullOptions, plus
// the identifying ones.
func alertLabels(pack, severity string, extra ...string) map[string]string {
	l := map[string]string{StackLabel: "data-platform", PackLabel: pack, SeverityLabel: severity, "team": "analytics"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// builtinTests are tests of the built-in alerts of fullOptions: each
// fires on failing series, stays silent on healthy ones, and stays silent
// on a fresh install (no series at all).
func builtinTests() map[string][]TestGroup {
	fresh := func(alert string) TestGroup {
		return TestGroup{Name: alert + " fresh install", InputSeries: []Series{{"up", "1x120"}},
			AlertTests: []AlertTest{expect("2h", alert)}}
	}
	dj := func(sev string, extra ...string) map[string]string {
		return alertLabels(PackDataJourney, sev, extra...)
	}
	infra := func(sev string, extra ...string) map[string]string {
		return alertLabels(PackInfrastructure, sev, extra...)
	}
	sec := func(extra ...string) map[string]string { return alertLabels(PackSecurity, "warning", extra...) }
	pod := `namespace="bi", pod="metabase-7d9f8b6c5d-x2x4z", container="metabase"`
	route := `namespace="bi", ingress="metabase"`
	// three are a firing, a healthy and a fresh-install test.
	three := func(alert, name string, firing, healthy []Series, at string, labels map[string]string) []TestGroup {
		return []TestGroup{
			{Name: name, InputSeries: firing, AlertTests: []AlertTest{expect("2m", alert), expect(at, alert, labels)}},
			{Name: alert + " healthy", InputSeries: healthy, AlertTests: []AlertTest{expect(at, alert)}},
			fresh(alert),
		}
	}
	return map[string][]TestGroup{
		AlertPodCrashLooping: three(AlertPodCrashLooping, "a container keeps crashing",
			[]Series{{`kube_pod_container_status_waiting_reason{` + pod + `, reason="CrashLoopBackOff"}`, "1x40"}},
			[]Series{{`kube_pod_container_status_waiting_reason{` + pod + `, reason="CrashLoopBackOff"}`, "0x40"}},
			"20m", infra("warning", "namespace", "bi", "pod", "metabase-7d9f8b6c5d-x2x4z", "container", "metabase", "reason", "CrashLoopBackOff")),
		AlertPodNotReady: three(AlertPodNotReady, "a pod stays unready",
			[]Series{{`kube_pod_status_ready{namespace="bi", pod="metabase-7d9f8b6c5d-x2x4z", condition="false"}`, "1x40"}},
			[]Series{
				{`kube_pod_status_ready{namespace="bi", pod="metabase-7d9f8b6c5d-x2x4z", condition="false"}`, "0x40"},
				// A Job's pod ends not ready: left to JobFailed.
				{`kube_pod_status_ready{namespace="bi", pod="dbt-1-abcde", condition="false"}`, "1x40"},
				{`kube_pod_owner{namespace="bi", pod="dbt-1-abcde", owner_kind="Job", owner_name="dbt-1"}`, "1x40"},
			},
			"20m", infra("warning", "namespace", "bi", "pod", "metabase-7d9f8b6c5d-x2x4z")),
		AlertContainerCPUNearLimit: three(AlertContainerCPUNearLimit, "a container runs at its CPU limit",
			[]Series{
				{`container_cpu_usage_seconds_total{` + pod + `}`, "0+57x40"},
				{`kube_pod_container_resource_limits{` + pod + `, resource="cpu"}`, "1x40"},
			},
			[]Series{
				{`container_cpu_usage_seconds_total{` + pod + `}`, "0+30x40"},
				{`kube_pod_container_resource_limits{` + pod + `, resource="cpu"}`, "1x40"},
			},
			"25m", infra("warning", "namespace", "bi", "pod", "metabase-7d9f8b6c5d-x2x4z", "container", "metabase")),
		AlertContainerMemoryNearLimit: three(AlertContainerMemoryNearLimit, "a container nears its memory limit",
			[]Series{
				{`container_memory_working_set_bytes{` + pod + `}`, "950x40"},
				{`kube_pod_container_resource_limits{` + pod + `, resource="memory"}`, "1000x40"},
			},
			[]Series{
				{`container_memory_working_set_bytes{` + pod + `}`, "500x40"},
				{`kube_pod_container_resource_limits{` + pod + `, resource="memory"}`, "1000x40"},
			},
			"25m", infra("warning", "namespace", "bi", "pod", "metabase-7d9f8b6c5d-x2x4z", "container", "metabase")),
		AlertPersistentVolumeFillingUp: three(AlertPersistentVolumeFillingUp, "a volume fills up",
			[]Series{
				{`kubelet_volume_stats_used_bytes{namespace="orchestration", persistentvolumeclaim="data-postgres-0"}`, "90x20"},
				{`kubelet_volume_stats_capacity_bytes{namespace="orchestration", persistentvolumeclaim="data-postgres-0"}`, "100x20"},
			},
			[]Series{
				{`kubelet_volume_stats_used_bytes{namespace="orchestration", persistentvolumeclaim="data-postgres-0"}`, "50x20"},
				{`kubelet_volume_stats_capacity_bytes{namespace="orchestration", persistentvolumeclaim="data-postgres-0"}`, "100x20"},
			},
			"10m", infra("warning", "namespace", "orchestration", "persistentvolumeclaim", "data-postgres-0")),
		AlertHTTPLatencyHigh: three(AlertHTTPLatencyHigh, "requests slow down",
			[]Series{
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="1"}`, "0x30"},
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="5"}`, "0+60x30"},
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="+Inf"}`, "0+60x30"},
			},
			[]Series{
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="1"}`, "0+60x30"},
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="5"}`, "0+60x30"},
				{`nginx_ingress_controller_request_duration_seconds_bucket{` + route + `, le="+Inf"}`, "0+60x30"},
			},
			"20m", infra("warning", "namespace", "bi", "ingress", "metabase")),
		AlertAPIServerForbidden: three(AlertAPIServerForbidden, "a service account lacks RBAC",
			[]Series{{`apiserver_request_total{namespace="default", job="apiserver", code="403", verb="GET", resource="secrets"}`, "0+300x30"}},
			[]Series{{`apiserver_request_total{namespace="default", job="apiserver", code="403", verb="GET", resource="secrets"}`, "0+6x30"}},
			"20m", sec("namespace", "default", "job", "apiserver")),
		AlertIngressDeniedRequests: three(AlertIngressDeniedRequests, "someone guesses passwords",
			[]Series{{`nginx_ingress_controller_requests{` + route + `, status="401"}`, "0+300x30"}},
			[]Series{{`nginx_ingress_controller_requests{` + route + `, status="401"}`, "0+6x30"}},
			"20m", sec("namespace", "bi", "ingress", "metabase")),
		AlertKafkaConsumerLagHigh: three(AlertKafkaConsumerLagHigh, "a consumer falls behind",
			[]Series{{`kafka_consumergroup_lag{namespace="kafka", consumergroup="generic-mae-consumer-job-client", topic="MetadataChangeLog_Versioned_v1", partition="0"}`, "5000x30"}},
			[]Series{{`kafka_consumergroup_lag{namespace="kafka", consumergroup="generic-mae-consumer-job-client", topic="MetadataChangeLog_Versioned_v1", partition="0"}`, "10x30"}},
			"20m", dj("warning", "namespace", "kafka", "consumergroup", "generic-mae-consumer-job-client", "topic", "MetadataChangeLog_Versioned_v1")),
		AlertPipelineOverSLA + "/warehouse": {{
			Name: "the nightly dbt run hangs", Interval: "10m",
			InputSeries: []Series{
				{`kube_job_status_start_time{namespace="orchestration", job_name="dbt-nightly-1"}`, "0x12"},
				{`kube_job_status_active{namespace="orchestration", job_name="dbt-nightly-1"}`, "1x12"},
				{`kube_job_owner{namespace="orchestration", job_name="dbt-nightly-1", owner_kind="CronJob", owner_name="dbt-nightly"}`, "1x12"},
			},
			AlertTests: []AlertTest{
				expect("80m", AlertPipelineOverSLA),
				expect("100m", AlertPipelineOverSLA, dj("critical", "namespace", "orchestration", "job_name", "dbt-nightly-1", "pipeline", "warehouse")),
			},
		}, fresh(AlertPipelineOverSLA)},
		AlertPipelineOverSLA + "/ingest": {{
			Name: "DAG runs take two hours", Interval: "30m",
			InputSeries: []Series{
				{`airflow_dagrun_duration_sum{namespace="orchestration", dag_id="ingest_raw"}`, "0+7200x10"},
				{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="ingest_raw"}`, "0+1x10"},
			},
			AlertTests: []AlertTest{expect("2h", AlertPipelineOverSLA, dj("critical", "namespace", "orchestration", "dag_id", "ingest_raw", "pipeline", "ingest"))},
		}, {
			Name: "DAG runs take ten minutes", Interval: "30m",
			InputSeries: []Series{
				{`airflow_dagrun_duration_sum{namespace="orchestration", dag_id="ingest_raw"}`, "0+600x10"},
				{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="ingest_raw"}`, "0+1x10"},
			},
			AlertTests: []AlertTest{expect("2h", AlertPipelineOverSLA)},
		}, fresh(AlertPipelineOverSLA)},
		AlertDataNotFresh + "/warehouse": {{
			Name: "the CronJob last succeeded 27h ago", Interval: "1h",
			InputSeries: []Series{
				{`kube_cronjob_status_last_successful_time{namespace="orchestration", cronjob="dbt-nightly"}`, "0x30"},
				{`kube_cronjob_created{namespace="orchestration", cronjob="dbt-nightly"}`, "0x30"},
			},
			AlertTests: []AlertTest{
				expect("20h", AlertDataNotFresh),
				expect("27h", AlertDataNotFresh, dj("critical", "namespace", "orchestration", "cronjob", "dbt-nightly", "pipeline", "warehouse")),
			},
		}, fresh(AlertDataNotFresh)},
		AlertDataNotFresh + "/events": {{
			Name: "the table was last loaded 2h30m ago", Interval: "10m",
			InputSeries: []Series{{`warehouse_table_last_loaded_timestamp_seconds{namespace="warehouse", schema="raw", table="events"}`, "0x20"}},
			AlertTests: []AlertTest{
				expect("1h", AlertDataNotFresh),
				expect("150m", AlertDataNotFresh, alertLabels(PackDataJourney, "warning", "namespace", "warehouse", "schema", "raw", "table", "events", "pipeline", "events")),
			},
		}, fresh(AlertDataNotFresh)},
		AlertDataQualityThresholdBreached + "/orders-nulls": {{
			Name:        "two tests of orders fail",
			InputSeries: []Series{{`dbt_tests_failed{namespace="orchestration", model="orders"}`, "0x10 2x10"}},
			AlertTests: []AlertTest{
				expect("5m", AlertDataQualityThresholdBreached),
				expect("15m", AlertDataQualityThresholdBreached, dj("warning", "namespace", "orchestration", "model", "orders", "quality_check", "orders-nulls")),
			},
		}, fresh(AlertDataQualityThresholdBreached)},
		AlertDataQualityThresholdBreached + "/rows-loaded": {{
			Name:        "too few rows for an hour",
			InputSeries: []Series{{`warehouse_rows_loaded{namespace="warehouse"}`, "5000x10 10x80"}},
			AlertTests: []AlertTest{
				expect("30m", AlertDataQualityThresholdBreached),
				expect("80m", AlertDataQualityThresholdBreached, dj("critical", "namespace", "warehouse", "quality_check", "rows-loaded")),
			},
		}, fresh(AlertDataQualityThresholdBreached)},
		AlertAirbyteSyncFailed: {{
			Name: "a sync fails",
			InputSeries: []Series{
				{`airbyte_syncs_total{namespace="ingestion", connection_id="c1", status="succeeded"}`, "0+1x60"},
				{`airbyte_syncs_total{namespace="ingestion", connection_id="c2", status="failed"}`, "_x30 1x30"},
			},
			AlertTests: []AlertTest{
				expect("20m", AlertAirbyteSyncFailed),
				expect("35m", AlertAirbyteSyncFailed, dj("critical", "namespace", "ingestion", "connection_id", "c2")),
				expect("55m", AlertAirbyteSyncFailed),
			},
		}, fresh(AlertAirbyteSyncFailed)},
		AlertAirflowDAGRunFailed: {{
			Name: "a DAG run fails",
			InputSeries: []Series{
				{`airflow_dagrun_failed_count{namespace="orchestration", dag_id="ingest_raw"}`, "1x30 2x30"},
			},
			AlertTests: []AlertTest{
				expect("25m", AlertAirflowDAGRunFailed),
				expect("35m", AlertAirflowDAGRunFailed, dj("critical", "namespace", "orchestration", "dag_id", "ingest_raw")),
			},
		}, fresh(AlertAirflowDAGRunFailed)},
		AlertDataNotFresh + "/ingest": {{
			Name:     "the DAG stops succeeding",
			Interval: "1h",
			InputSeries: []Series{
				// Succeeds at 0h and 1h, then only fails.
				{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="ingest_raw"}`, "1+1x1 2x30"},
				{`airflow_dagrun_failed_count{namespace="orchestration", dag_id="ingest_raw"}`, "_x2 1+1x28"},
			},
			AlertTests: []AlertTest{
				expect("20h", AlertDataNotFresh),
				expect("27h", AlertDataNotFresh, dj("critical", "namespace", "orchestration", "dag_id", "ingest_raw", "pipeline", "ingest")),
			},
		}, {
			Name: "the DAG succeeds every hour", Interval: "1h",
			InputSeries: []Series{{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="ingest_raw"}`, "1+1x5"}},
			AlertTests:  []AlertTest{expect("4h", AlertDataNotFresh)},
		}, fresh(AlertDataNotFresh)},
		AlertKafkaConsumerStalled: {{
			Name: "a consumer stops",
			InputSeries: []Series{
				{`kafka_consumergroup_lag{namespace="kafka", consumergroup="generic-mae-consumer-job-client", topic="MetadataChangeLog_Versioned_v1", partition="0"}`, "5+5x60"},
				{`kafka_consumergroup_current_offset{namespace="kafka", consumergroup="generic-mae-consumer-job-client", topic="MetadataChangeLog_Versioned_v1", partition="0"}`, "0+10x20 200x40"},
				// A healthy group: lag, but it keeps committing.
				{`kafka_consumergroup_lag{namespace="kafka", consumergroup="generic-mce-consumer-job-client", topic="MetadataChangeProposal_v1", partition="0"}`, "3x60"},
				{`kafka_consumergroup_current_offset{namespace="kafka", consumergroup="generic-mce-consumer-job-client", topic="MetadataChangeProposal_v1", partition="0"}`, "0+10x60"},
			},
			AlertTests: []AlertTest{
				expect("20m", AlertKafkaConsumerStalled),
				expect("50m", AlertKafkaConsumerStalled, dj("critical", "namespace", "kafka", "consumergroup", "generic-mae-consumer-job-client", "topic", "MetadataChangeLog_Versioned_v1")),
			},
		}, fresh(AlertKafkaConsumerStalled)},
		AlertJobFailed: {{
			Name: "a dbt Job fails",
			InputSeries: []Series{
				{`kube_job_failed{namespace="orchestration", job_name="dbt-nightly-1", condition="true"}`, "0x10 1x10"},
				{`kube_job_owner{namespace="orchestration", job_name="dbt-nightly-1", owner_kind="CronJob", owner_name="dbt-nightly"}`, "1x20"},
			},
			AlertTests: []AlertTest{
				expect("5m", AlertJobFailed),
				expect("15m", AlertJobFailed, dj("critical", "namespace", "orchestration", "job_name", "dbt-nightly-1", "owner_kind", "CronJob", "owner_name", "dbt-nightly")),
			},
		}, fresh(AlertJobFailed)},
		AlertHTTPErrorRateHigh: {{
			Name: "half the requests fail",
			InputSeries: []Series{
				{`nginx_ingress_controller_requests{namespace="bi", ingress="metabase", status="200"}`, "0+60x30"},
				{`nginx_ingress_controller_requests{namespace="bi", ingress="metabase", status="500"}`, "0+0x10 0+60x20"},
			},
			AlertTests: []AlertTest{
				expect("10m", AlertHTTPErrorRateHigh),
				expect("30m", AlertHTTPErrorRateHigh, alertLabels(PackInfrastructure, "critical", "namespace", "bi", "ingress", "metabase")),
			},
		}, fresh(AlertHTTPErrorRateHigh)},
		AlertAPIServerUnauthorized: {{
			Name: "a client keeps failing to authenticate",
			InputSeries: []Series{
				{`apiserver_request_total{namespace="default", job="apiserver", code="401", verb="LIST", resource="secrets"}`, "0+600x30"},
				{`apiserver_request_total{namespace="default", job="apiserver", code="200", verb="LIST", resource="secrets"}`, "0+6000x30"},
			},
			AlertTests: []AlertTest{
				expect("5m", AlertAPIServerUnauthorized),
				expect("25m", AlertAPIServerUnauthorized, alertLabels(PackSecurity, "warning", "namespace", "default", "job", "apiserver")),
			},
		}, fresh(AlertAPIServerUnauthorized)},
	}
}

// builtinGroups are the rule groups of fullOptions as Generate writes them.
func builtinGroups(t *testing.T) map[string][]Group {
	t.Helper()
	o := fullOptions()
	out := map[string][]Group{}
	for pack, f := range map[string]func() ([]Group, error){
		PackInfrastructure: o.infrastructureGroups, PackDataJourney: o.dataJourneyGroups, PackSecurity: o.securityGroups,
	} {
		g, err := f()
		if err != nil {
			t.Fatal(err)
		}
		out[pack] = o.finish(pack, g)
	}
	return out
}

// TestBuiltinRuleTests runs the built-in tests in-process. Every built-in
// alert has tests that see it fire, stay silent on healthy series, and stay
// silent on a fresh install.
func TestBuiltinRuleTests(t *testing.T) {
	tests := builtinTests()
	for _, groups := range builtinGroups(t) {
		for _, g := range groups {
			for _, r := range g.Rules {
				var firing, silent, fresh bool
				for _, tg := range tests[testKey(r)] {
					for _, at := range tg.AlertTests {
						firing = firing || len(at.ExpAlerts) > 0
						silent = silent || len(at.ExpAlerts) == 0 && len(tg.InputSeries) > 0 && tg.InputSeries[0].Series != "up"
						fresh = fresh || len(at.ExpAlerts) == 0 && len(tg.InputSeries) == 1 && tg.InputSeries[0].Series == "up"
					}
				}
				if !firing || !silent || !fresh {
					t.Errorf("%s: tests see it firing %v, silent on healthy series %v, silent on a fresh install %v", testKey(r), firing, silent, fresh)
				}
			}
		}
	}
	for _, groups := range builtinGroups(t) {
		if _, err := RunTests(groups, tests); err != nil {
			t.Error(err)
		}
	}
}

// TestRuleTestFailure: a wrong expectation fails, with the alert, the test
// and the expectation that failed.
func TestRuleTestFailure(t *testing.T) {
	groups := builtinGroups(t)[PackDataJourney]
	bad := map[string][]TestGroup{AlertJobFailed: {{
		InputSeries: []Series{{`kube_job_failed{namespace="orchestration", job_name="j", condition="true"}`, "1x10"}},
		AlertTests:  []AlertTest{expect("1m", AlertJobFailed), expect("5m", AlertJobFailed, map[string]string{"job_name": "other"})},
	}}}
	_, err := RunTests(groups, bad)
	var f *TestFailure
	if !errors.As(err, &f) {
		t.Fatalf("want a TestFailure, got %v", err)
	}
	if f.Alert != AlertJobFailed || f.Test != 0 || f.Expect != 1 || !strings.Contains(f.Msg, `expected alert {job_name="other"} did not fire`) {
		t.Errorf("failure %+v", f)
	}
}

// TestPromtoolRuleTests runs the same tests with the real promtool over
// the rule files Generate writes: both engines agree.
func TestPromtoolRuleTests(t *testing.T) {
	dir := t.TempDir()
	// The tests written here, and those galley makes at build for the
	// same parameters.
	completed := map[string][]TestGroup{}
	o := fullOptions()
	for _, groups := range builtinGroups(t) {
		done, err := RunTests(groups, builtinTests())
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(completed, done)
		generated, _ := o.packTests(groups)
		done, err = RunTests(groups, generated)
		if err != nil {
			t.Fatal(err)
		}
		for k, tgs := range done {
			completed[k] = append(completed[k], tgs...)
		}
	}
	if got, want := slices.Sorted(maps.Keys(completed)), slices.Sorted(maps.Keys(builtinTests())); !slices.Equal(got, want) {
		t.Fatalf("completed tests of %v, want %v", got, want)
	}
	// One promtool run per alert's tests, over a rules file of that alert
	// alone, as Generate writes it: promtool evaluates every rule it loads
	// at every step of a test, and the freshness tests last a day.
	all := builtinGroups(t)
	for i, key := range slices.Sorted(maps.Keys(completed)) {
		var only []Group
		for _, pack := range slices.Sorted(maps.Keys(all)) {
			for _, g := range all[pack] {
				var rules []Rule
				for _, r := range g.Rules {
					if testKey(r) == key {
						rules = append(rules, r)
					}
				}
				if len(rules) > 0 {
					only = append(only, Group{Name: g.Name, Rules: rules})
				}
			}
		}
		rules, err := RulesFile(only)
		if err != nil {
			t.Fatal(err)
		}
		rulesPath := fmt.Sprintf("rules-%d.yaml", i)
		if err := os.WriteFile(filepath.Join(dir, rulesPath), rules, 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := UnitTestFile([]string{rulesPath}, map[string][]TestGroup{key: completed[key]})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("tests-%d.yaml", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := testtools.Run(t, "promtool", "test", "rules", p)
		if err != nil || !strings.Contains(stdout+stderr, "SUCCESS") {
			t.Errorf("%s: promtool test rules: %v\n%s%s\n%s", key, err, stdout, stderr, b)
		}
	}
}
