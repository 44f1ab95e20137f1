package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// BuiltinTestFailure is a built-in alert that, with the stack's own
// parameters (thresholds, durations, windows), does not fire on the series
// it exists for, fires on healthy series, or fires on a fresh install. Field
// is the pack setting it comes from, below the monitoring block
// ("packs.dataJourney.airflow", "packs.infrastructure.cpu").
type BuiltinTestFailure struct {
	Field string
	// Test is the name of the failed test ("fires on failing series").
	Test string
	*TestFailure
}

func (f *BuiltinTestFailure) Error() string {
	return fmt.Sprintf("%s: built-in test %q of alert %s failed: %s", f.Field, f.Test, f.Alert, f.Msg)
}

func (f *BuiltinTestFailure) Unwrap() error { return f.TestFailure }

// packTests are the unit tests of the built-in rules of groups, made for
// the parameters they were generated with: for every alert, series that
// must make it fire (and when), healthy series that must leave it silent,
// and a fresh install with no series of its metrics. fields maps a test
// key to the pack setting it checks.
func (o *Options) packTests(groups []Group) (tests map[string][]TestGroup, fields map[string]string) {
	tests, fields = map[string][]TestGroup{}, map[string]string{}
	for _, g := range groups {
		for _, r := range g.Rules {
			s, field := o.ruleSpec(r)
			if s == nil {
				continue
			}
			key := testKey(r)
			tests[key] = s.groups(r)
			fields[key] = field
		}
	}
	return tests, fields
}

// spec describes the tests of one alert: at is when the failing series
// must have made it fire; before, when set, a time it must still be
// silent (pending, or before the failure).
type spec struct {
	firing, healthy []Series
	labels          map[string]string
	at, before      time.Duration
}

func (s *spec) groups(r Rule) []TestGroup {
	want := maps.Clone(r.Labels)
	maps.Copy(want, s.labels)
	at := dur(s.at)
	fire := TestGroup{Name: "fires on failing series", InputSeries: s.firing}
	if s.before > 0 {
		fire.AlertTests = append(fire.AlertTests, expect(dur(s.before), r.Alert))
	}
	fire.AlertTests = append(fire.AlertTests, expect(at, r.Alert, want))
	return []TestGroup{
		fire,
		{Name: "silent on healthy series", InputSeries: s.healthy, AlertTests: []AlertTest{expect(at, r.Alert)}},
		{Name: "silent on a fresh install", InputSeries: []Series{{"up", "1x" + strconv.Itoa(minutes(s.at)+1)}},
			AlertTests: []AlertTest{expect(at, r.Alert)}},
	}
}

func expect(at, alert string, alerts ...map[string]string) AlertTest {
	t := AlertTest{EvalTime: at, Alertname: alert, ExpAlerts: []ExpAlert{}}
	for _, l := range alerts {
		t.ExpAlerts = append(t.ExpAlerts, ExpAlert{ExpLabels: l})
	}
	return t
}

func dur(d time.Duration) string { return model.Duration(d).String() }

func minutes(d time.Duration) int { return int(math.Ceil(d.Minutes())) }

// parsed is a checked duration ("" and invalid ones are zero: checkGroups
// reports those).
func parsed(d string) time.Duration {
	v, err := model.ParseDuration(d)
	if err != nil {
		return 0
	}
	return time.Duration(v)
}

// series is a metric with labels, written as promtool reads it.
func series(metric string, kv ...string) string {
	var b strings.Builder
	b.WriteString(metric + "{")
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(kv[i] + "=" + strconv.Quote(kv[i+1]))
	}
	return b.String() + "}"
}

// flat is a value held for n+1 one-minute samples; growing a counter
// that grows by step a minute.
func flat(v float64, n int) string       { return number(v) + "x" + strconv.Itoa(n) }
func growing(step float64, n int) string { return "0+" + number(step) + "x" + strconv.Itoa(n) }

func labelPairs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Fixed names of the test series: a pod, a route, a DAG, a connection.
const (
	testPod       = "app-7d9f8b6c5d-x2x4z"
	testContainer = "app"
	testRoute     = "app"
	testDAG       = "ingest_raw"
)

// route is a request counter's series of the ingress for one route to an
// app of namespace ns, with a status code, and the labels an alert on it
// carries.
func (m ingressMetrics) route(ns string) (kv []string, labels map[string]string) {
	switch {
	case m.namespaceFrom == nil:
		kv = []string{"namespace", ns, m.ident, testRoute}
	case m.ident == "service":
		kv = []string{m.ident, ns + "-" + testRoute + "-80@kubernetes"}
	default:
		kv = []string{m.ident, "httproute/" + ns + "/" + testRoute + "/rule/0"}
	}
	labels = labelPairs(kv...)
	labels["namespace"] = ns
	return kv, labels
}

func (o *Options) ruleSpec(r Rule) (*spec, string) {
	hold := parsed(r.For)
	ns := func(namespaces []string) string {
		if s := uniqueSorted(namespaces); len(s) > 0 && s[0] != "" {
			return s[0]
		}
		return "default"
	}
	if p := o.Infrastructure; p != nil {
		n := ns(p.Namespaces)
		pod := []string{"namespace", n, "pod", testPod, "container", testContainer}
		podLabels := labelPairs(pod...)
		ing, hasIngress := ingresses[o.Ingress]
		switch r.Alert {
		case AlertPodCrashLooping:
			at := hold + 5*time.Minute
			s := series("kube_pod_container_status_waiting_reason", append(pod, "reason", "CrashLoopBackOff")...)
			return &spec{
				firing: []Series{{s, flat(1, minutes(at))}}, healthy: []Series{{s, flat(0, minutes(at))}},
				labels: labelPairs(append(pod, "reason", "CrashLoopBackOff")...), at: at, before: pending(hold),
			}, "packs.infrastructure.crashLooping"
		case AlertPodNotReady:
			at := hold + 2*time.Minute
			k := minutes(at)
			ready := func(pod string) string {
				return series("kube_pod_status_ready", "namespace", n, "pod", pod, "condition", "false")
			}
			return &spec{
				firing: []Series{{ready(testPod), flat(1, k)}},
				healthy: []Series{
					{ready(testPod), flat(0, k)},
					// A Job's pod ends not ready: left to JobFailed.
					{ready("dbt-1-abcde"), flat(1, k)},
					{series("kube_pod_owner", "namespace", n, "pod", "dbt-1-abcde", "owner_kind", "Job", "owner_name", "dbt-1"), flat(1, k)},
				},
				labels: labelPairs("namespace", n, "pod", testPod), at: at, before: pending(hold),
			}, "packs.infrastructure.notReady"
		case AlertHTTPErrorRateHigh:
			if !hasIngress {
				return nil, ""
			}
			at := hold + 6*time.Minute
			k := minutes(at)
			kv, labels := ing.route(n)
			req := func(code string) string { return series(ing.counter, append(slices.Clone(kv), ing.code, code)...) }
			// 100 requests a minute, failing at 1.5 and at half the ratio.
			bad := math.Min(100, math.Floor(p.ErrorRate.Ratio*150)+1)
			good := math.Floor(p.ErrorRate.Ratio * 50)
			return &spec{
				firing:  []Series{{req("200"), growing(100-bad, k)}, {req("500"), growing(bad, k)}},
				healthy: []Series{{req("200"), growing(100-good, k)}, {req("500"), growing(good, k)}},
				labels:  labels, at: at, before: pending(hold),
			}, "packs.infrastructure.errorRate"
		case AlertHTTPLatencyHigh:
			if !hasIngress {
				return nil, ""
			}
			at := hold + 6*time.Minute
			k := minutes(at)
			kv, labels := ing.route(n)
			t := p.Latency.Ratio * ing.durationScale
			bucket := func(le string) string {
				return series(ing.duration+"_bucket", append(slices.Clone(kv), "le", le)...)
			}
			// Every request takes between the threshold and four times it,
			// or less than half of it.
			return &spec{
				firing: []Series{
					{bucket(number(t)), flat(0, k)}, {bucket(number(4 * t)), growing(60, k)}, {bucket("+Inf"), growing(60, k)},
				},
				healthy: []Series{
					{bucket(number(t / 2)), growing(60, k)}, {bucket(number(t)), growing(60, k)}, {bucket("+Inf"), growing(60, k)},
				},
				labels: labels, at: at, before: pending(hold),
			}, "packs.infrastructure.latency"
		case AlertContainerCPUNearLimit:
			at := hold + 6*time.Minute
			k := minutes(at)
			use := series("container_cpu_usage_seconds_total", pod...)
			limit := []Series{{series("kube_pod_container_resource_limits", append(pod, "resource", "cpu")...), flat(1, k)}}
			// One core of limit; CPU seconds a minute at 1.2 and 0.5 times
			// the ratio.
			return &spec{
				firing:  append([]Series{{use, growing(60*p.CPU.Ratio*1.2, k)}}, limit...),
				healthy: append([]Series{{use, growing(30*p.CPU.Ratio, k)}}, limit...),
				labels:  podLabels, at: at, before: pending(hold),
			}, "packs.infrastructure.cpu"
		case AlertContainerMemoryNearLimit:
			at := hold + 2*time.Minute
			k := minutes(at)
			use := series("container_memory_working_set_bytes", pod...)
			limit := []Series{{series("kube_pod_container_resource_limits", append(pod, "resource", "memory")...), flat(1000, k)}}
			return &spec{
				firing:  append([]Series{{use, flat(1000*p.Memory.Ratio*1.1, k)}}, limit...),
				healthy: append([]Series{{use, flat(1000*p.Memory.Ratio/2, k)}}, limit...),
				labels:  podLabels, at: at, before: pending(hold),
			}, "packs.infrastructure.memory"
		case AlertPersistentVolumeFillingUp:
			at := hold + 2*time.Minute
			k := minutes(at)
			pvc := []string{"namespace", n, "persistentvolumeclaim", "data-app-0"}
			used := series("kubelet_volume_stats_used_bytes", pvc...)
			capacity := []Series{{series("kubelet_volume_stats_capacity_bytes", pvc...), flat(1000, k)}}
			return &spec{
				firing:  append([]Series{{used, flat(1000*p.Volume.Ratio*1.05, k)}}, capacity...),
				healthy: append([]Series{{used, flat(1000*p.Volume.Ratio/2, k)}}, capacity...),
				labels:  labelPairs(pvc...), at: at, before: pending(hold),
			}, "packs.infrastructure.volume"
		}
	}
	if p := o.Security; p != nil {
		api := func(c Check, code, field string) (*spec, string) {
			at := hold + 6*time.Minute
			k := minutes(at)
			s := series("apiserver_request_total", "namespace", "default", "job", "apiserver", "code", code, "verb", "LIST", "resource", "secrets")
			return &spec{
				firing: []Series{{s, growing(60*math.Max(2*c.Ratio, 1), k)}}, healthy: []Series{{s, growing(30*c.Ratio, k)}},
				labels: labelPairs("namespace", "default", "job", "apiserver"), at: at, before: pending(hold),
			}, field
		}
		switch r.Alert {
		case AlertAPIServerUnauthorized:
			return api(p.APIUnauthorized, "401", "packs.security.apiUnauthorized")
		case AlertAPIServerForbidden:
			return api(p.APIForbidden, "403", "packs.security.apiForbidden")
		case AlertIngressDeniedRequests:
			ing, ok := ingresses[o.Ingress]
			if !ok {
				return nil, ""
			}
			at := hold + 6*time.Minute
			k := minutes(at)
			kv, labels := ing.route(ns(p.Namespaces))
			s := series(ing.counter, append(kv, ing.code, "401")...)
			return &spec{
				firing: []Series{{s, growing(60*math.Max(2*p.IngressDenied.Ratio, 1), k)}}, healthy: []Series{{s, growing(30*p.IngressDenied.Ratio, k)}},
				labels: labels, at: at, before: pending(hold),
			}, "packs.security.ingressDenied"
		}
	}
	if p := o.DataJourney; p != nil {
		return o.dataJourneySpec(p, r, hold)
	}
	return nil, ""
}

// pending is a time a rule held for hold is still pending when its
// condition holds from the start, or 0 when there is none worth checking.
func pending(hold time.Duration) time.Duration {
	if hold < 2*time.Minute {
		return 0
	}
	return hold - time.Minute
}

func (o *Options) dataJourneySpec(p *DataJourney, r Rule, hold time.Duration) (*spec, string) {
	nsOr := func(ns, def string) string {
		if ns == "" {
			return def
		}
		return ns
	}
	// grows is a failure counter that exists from the start (its first
	// failure long past) and counts one more failure at minute k+1.
	grows := func(window time.Duration) (at, before time.Duration, firing, healthy string) {
		k := minutes(window) + 5
		at = time.Duration(k+1)*time.Minute + hold + time.Minute
		n := minutes(at)
		return at, time.Duration(k) * time.Minute, "1x" + strconv.Itoa(k) + " 2x" + strconv.Itoa(n-k-1), flat(1, n)
	}
	switch r.Alert {
	case AlertAirflowDAGRunFailed:
		a := p.Airflow
		window := parsed(a.Window)
		at, before, firing, healthy := grows(window)
		ns := nsOr(a.Namespace, "airflow")
		s := series("airflow_dagrun_failed_count", "namespace", ns, "dag_id", testDAG)
		return &spec{
			firing: []Series{{s, firing}}, healthy: []Series{{s, healthy}},
			labels: labelPairs("namespace", ns, "dag_id", testDAG), at: at, before: before,
		}, "packs.dataJourney.airflow"
	case AlertAirbyteSyncFailed:
		a := p.Airbyte
		window := parsed(a.Window)
		at, before, firing, healthy := grows(window)
		ns := nsOr(a.Namespace, "airbyte")
		s := series("airbyte_syncs_total", "namespace", ns, "connection_id", "c1", "status", "failed")
		return &spec{
			firing: []Series{{s, firing}}, healthy: []Series{{s, healthy}},
			labels: labelPairs("namespace", ns, "connection_id", "c1"), at: at, before: before,
		}, "packs.dataJourney.airbyte"
	case AlertKafkaConsumerLagHigh, AlertKafkaConsumerStalled:
		st := p.Streaming
		group := uniqueSorted(st.ConsumerGroups)[0]
		kv := []string{"namespace", "kafka", "consumergroup", group, "topic", "events", "partition", "0"}
		lag := series("kafka_consumergroup_lag", kv...)
		labels := labelPairs("namespace", "kafka", "consumergroup", group, "topic", "events")
		if r.Alert == AlertKafkaConsumerLagHigh {
			at := hold + 2*time.Minute
			k := minutes(at)
			return &spec{
				firing: []Series{{lag, flat(math.Floor(st.Lag.Ratio*2)+1, k)}}, healthy: []Series{{lag, flat(math.Floor(st.Lag.Ratio/2), k)}},
				labels: labels, at: at, before: pending(hold),
			}, "packs.dataJourney.streaming.lag"
		}
		// The group commits for 10 minutes, then stops with messages
		// left; a healthy group keeps committing with a small lag.
		window := parsed(st.Window)
		at := 10*time.Minute + window + hold + 2*time.Minute
		k := minutes(at)
		offset := series("kafka_consumergroup_current_offset", kv...)
		return &spec{
			firing:  []Series{{lag, flat(5, k)}, {offset, "0+10x10 100x" + strconv.Itoa(k-11)}},
			healthy: []Series{{lag, flat(3, k)}, {offset, growing(10, k)}},
			labels:  labels, at: at, before: 10 * time.Minute,
		}, "packs.dataJourney.streaming.stalled"
	case AlertJobFailed:
		ns := "default"
		if s := uniqueSorted(p.Jobs.Namespaces); len(s) > 0 {
			ns = s[0]
		}
		at := hold + 8*time.Minute
		k := minutes(at)
		job := []string{"namespace", ns, "job_name", "dbt-nightly-1"}
		owner := Series{series("kube_job_owner", append(job, "owner_kind", "CronJob", "owner_name", "dbt-nightly")...), flat(1, k)}
		failed := series("kube_job_failed", append(job, "condition", "true")...)
		return &spec{
			firing: []Series{{failed, "0x5 1x" + strconv.Itoa(k-6)}, owner}, healthy: []Series{{failed, flat(0, k)}, owner},
			labels: labelPairs(append(job, "owner_kind", "CronJob", "owner_name", "dbt-nightly")...), at: at, before: 4 * time.Minute,
		}, "packs.dataJourney.jobs"
	case AlertPipelineOverSLA, AlertDataNotFresh:
		name := r.Labels["pipeline"]
		i := slices.IndexFunc(p.Pipelines, func(pl Pipeline) bool { return pl.Name == name })
		if i < 0 {
			return nil, ""
		}
		return pipelineSpec(p.Pipelines[i], r.Alert), "packs.dataJourney.pipelines." + name
	case AlertDataQualityThresholdBreached:
		name := r.Labels["quality_check"]
		i := slices.IndexFunc(p.Quality, func(q Quality) bool { return q.Name == name })
		if i < 0 {
			return nil, ""
		}
		q := p.Quality[i]
		at := hold + 2*time.Minute
		k := minutes(at)
		var bad, good float64
		if q.Above != nil {
			step := math.Max(1, math.Abs(*q.Above)/2)
			bad, good = *q.Above+step, *q.Above-step
		} else {
			step := math.Max(1, math.Abs(*q.Below)/2)
			bad, good = *q.Below-step, *q.Below+step
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(q.Matchers)) {
			kv = append(kv, k, q.Matchers[k])
		}
		s := series(q.Metric, kv...)
		return &spec{
			firing: []Series{{s, flat(bad, k)}}, healthy: []Series{{s, flat(good, k)}},
			labels: labelPairs(kv...), at: at, before: pending(hold),
		}, "packs.dataJourney.quality." + name
	}
	return nil, ""
}

func pipelineSpec(pl Pipeline, alert string) *spec {
	switch {
	case alert == AlertPipelineOverSLA && pl.CronJob != nil:
		// A run starts at 0 and is still active after its SLA; a healthy
		// one ends at half of it.
		sla := parsed(pl.SLA)
		at := sla + 2*time.Minute
		k := minutes(at)
		half := minutes(sla / 2)
		job := []string{"namespace", pl.CronJob.Namespace, "job_name", pl.CronJob.Name + "-1"}
		common := []Series{
			{series("kube_job_status_start_time", job...), flat(0, k)},
			{series("kube_job_owner", append(job, "owner_kind", "CronJob", "owner_name", pl.CronJob.Name)...), flat(1, k)},
		}
		active := series("kube_job_status_active", job...)
		return &spec{
			firing:  append([]Series{{active, flat(1, k)}}, common...),
			healthy: append([]Series{{active, "1x" + strconv.Itoa(half) + " 0x" + strconv.Itoa(k-half-1)}}, common...),
			labels:  labelPairs(job...), at: at, before: sla - time.Minute,
		}
	case alert == AlertPipelineOverSLA && pl.AirflowDAG != "":
		// Runs end at a steady pace, each taking 1.5 or 0.5 times the SLA.
		sla := parsed(pl.SLA).Seconds()
		at := parsed(slaWindow) + 2*time.Minute
		k := minutes(at)
		ns := cmpOr(pl.AirflowNamespace, "airflow")
		m := []string{"namespace", ns, "dag_id", pl.AirflowDAG}
		count := Series{series("airflow_dagrun_duration_count", m...), growing(1.0/30, k)}
		sum := series("airflow_dagrun_duration_sum", m...)
		return &spec{
			firing:  []Series{{sum, growing(sla*1.5/30, k)}, count},
			healthy: []Series{{sum, growing(sla*0.5/30, k)}, count},
			labels:  labelPairs(m...), at: at,
		}
	case pl.CronJob != nil:
		// The CronJob last succeeded at 0; a healthy one succeeds every
		// minute.
		window := parsed(pl.Freshness)
		at := window + 2*time.Minute
		k := minutes(at)
		m := []string{"namespace", pl.CronJob.Namespace, "cronjob", pl.CronJob.Name}
		created := Series{series("kube_cronjob_created", m...), flat(0, k)}
		last := series("kube_cronjob_status_last_successful_time", m...)
		return &spec{
			firing:  []Series{{last, flat(0, k)}, created},
			healthy: []Series{{last, growing(60, k)}, created},
			labels:  labelPairs(m...), at: at, before: window - time.Minute,
		}
	case pl.AirflowDAG != "":
		// The DAG succeeds twice, then only fails; a healthy one succeeds
		// every minute.
		window := parsed(pl.Freshness)
		at := window + 3*time.Minute
		k := minutes(at)
		ns := cmpOr(pl.AirflowNamespace, "airflow")
		m := []string{"namespace", ns, "dag_id", pl.AirflowDAG}
		ok := series("airflow_dagrun_duration_count", m...)
		return &spec{
			firing: []Series{
				{ok, "1+1x1 2x" + strconv.Itoa(k-2)},
				{series("airflow_dagrun_failed_count", m...), "_x2 1+1x" + strconv.Itoa(k-3)},
			},
			healthy: []Series{{ok, "1+1x" + strconv.Itoa(k)}},
			labels:  labelPairs(m...), at: at, before: window - time.Minute,
		}
	case pl.LastSuccess != nil:
		// The data was last loaded at 0; healthy data is loaded every
		// minute.
		window := parsed(pl.Freshness)
		at := window + 2*time.Minute
		k := minutes(at)
		var kv []string
		for _, key := range slices.Sorted(maps.Keys(pl.LastSuccess.Matchers)) {
			kv = append(kv, key, pl.LastSuccess.Matchers[key])
		}
		s := series(pl.LastSuccess.Metric, kv...)
		return &spec{
			firing: []Series{{s, flat(0, k)}}, healthy: []Series{{s, growing(60, k)}},
			labels: labelPairs(kv...), at: at, before: window - time.Minute,
		}
	}
	return nil
}

// runPackTests runs the built-in tests of a pack's groups and reports
// each failure at the pack setting it checks.
func (o *Options) runPackTests(groups []Group) error {
	tests, fields := o.packTests(groups)
	if len(tests) == 0 {
		return nil
	}
	key, kerr := packTestsKey(groups, tests)
	remember := o.PassedTests != nil && kerr == nil
	if remember && o.PassedTests.Passed(key) {
		return nil
	}
	_, err := RunTests(groups, tests)
	if err == nil {
		if remember {
			o.PassedTests.RecordPass(key)
		}
		return nil
	}
	failures, ok := errors.AsType[TestFailures](testFailures(err))
	if !ok {
		return err
	}
	out := make(BuiltinTestFailures, len(failures))
	for i, f := range failures {
		out[i] = &BuiltinTestFailure{Field: fields[f.Key], Test: tests[f.Key][f.Test].Name, TestFailure: f}
	}
	return out
}

// packTestsKey digests what a run of pack tests depends on.
func packTestsKey(groups []Group, tests map[string][]TestGroup) (string, error) {
	b, err := json.Marshal(struct {
		Groups []Group
		Tests  map[string][]TestGroup
	}{groups, tests})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// BuiltinTestFailures are the failed built-in tests of the packs.
type BuiltinTestFailures []error

func (b BuiltinTestFailures) Error() string {
	msgs := make([]string, len(b))
	for i, e := range b {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("built-in alert tests failed with the stack's parameters:\n%s", strings.Join(msgs, "\n"))
}

func (b BuiltinTestFailures) Unwrap() []error { return b }
