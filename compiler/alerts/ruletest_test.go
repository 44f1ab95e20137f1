package alerts

import (
	"errors"
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

func expect(at, alert string, alerts ...map[string]string) AlertTest {
	t := AlertTest{EvalTime: at, Alertname: alert, ExpAlerts: []ExpAlert{}}
	for _, l := range alerts {
		t.ExpAlerts = append(t.ExpAlerts, ExpAlert{ExpLabels: l})
	}
	return t
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
	return map[string][]TestGroup{
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
				// Succeeds every hour for 10h, then only fails.
				{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="ingest_raw"}`, "1+1x10 11x40"},
				{`airflow_dagrun_failed_count{namespace="orchestration", dag_id="ingest_raw"}`, "_x11 1+1x39"},
			},
			AlertTests: []AlertTest{
				expect("20h", AlertDataNotFresh),
				expect("40h", AlertDataNotFresh, dj("critical", "namespace", "orchestration", "dag_id", "ingest_raw", "pipeline", "ingest")),
			},
		}, {
			Name: "a DAG that never ran is not stale", Interval: "1h",
			InputSeries: []Series{{`airflow_dagrun_duration_count{namespace="orchestration", dag_id="other"}`, "1+1x40"}},
			AlertTests:  []AlertTest{expect("30h", AlertDataNotFresh)},
		}},
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

// TestBuiltinRuleTests runs the built-in tests in-process.
func TestBuiltinRuleTests(t *testing.T) {
	tests := builtinTests()
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
	files, err := Generate(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := ruleFiles(t, dir, "full", files)
	var rel []string
	for _, p := range paths {
		rel = append(rel, filepath.Base(p))
	}
	completed := map[string][]TestGroup{}
	for _, groups := range builtinGroups(t) {
		done, err := RunTests(groups, builtinTests())
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(completed, done)
	}
	if got, want := slices.Sorted(maps.Keys(completed)), slices.Sorted(maps.Keys(builtinTests())); !slices.Equal(got, want) {
		t.Fatalf("completed tests of %v, want %v", got, want)
	}
	b, err := UnitTestFile(rel, completed)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := testtools.Run(t, "promtool", "test", "rules", p)
	if err != nil {
		t.Fatalf("%v\n%s%s\n%s", err, stdout, stderr, b)
	}
	if !strings.Contains(stdout+stderr, "SUCCESS") {
		t.Errorf("promtool output: %s%s", stdout, stderr)
	}
}
