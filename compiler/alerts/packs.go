package alerts

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Check tunes one alert of a pack. The zero Check is off.
type Check struct {
	Enabled bool
	// For is how long the condition must hold before the alert fires, a
	// Prometheus duration ("" or "0m" for at once).
	For      string
	Severity string
	// Ratio is the threshold of the alerts that compare a ratio.
	Ratio float64
}

// Infrastructure is the infrastructure health pack: pods, containers and
// volumes of the namespaces, from kube-state-metrics, cAdvisor and kubelet
// metrics, and the golden signals of the apps' HTTP traffic (errors and
// latency) from the ingress controller in front of them
// (Options.Ingress). Every alert carries the namespace label.
type Infrastructure struct {
	Namespaces []string
	// CrashLooping: a container waits in CrashLoopBackOff.
	CrashLooping Check
	// NotReady: a pod (not a Job's) is pending, failed, unknown or not
	// ready.
	NotReady Check
	// ErrorRate: the ratio of 5xx responses is above Ratio, per ingress
	// route; only with an ingress.
	ErrorRate Check
	// Latency: the p99 request duration of an ingress route is above
	// Ratio seconds; only with an ingress.
	Latency Check
	// CPU, Memory: a container uses more than Ratio of its limit.
	CPU    Check
	Memory Check
	// Volume: a persistent volume claim is fuller than Ratio.
	Volume Check
}

// DataJourney is the data journey pack, one rule group.
type DataJourney struct {
	Airflow   *Airflow
	Airbyte   *Airbyte
	Jobs      *Jobs
	Streaming *Streaming
	Pipelines []Pipeline
	Quality   []Quality
}

// Airflow alerts on failed DAG runs, from the StatsD metrics of Airflow's
// official chart (airflow_dagrun_failed, a timer per dag_id).
type Airflow struct {
	// Namespace scopes the metrics; "" reads every namespace.
	Namespace    string
	DAGRunFailed Check
	// Window is how long one failure keeps the alert firing.
	Window string
}

// Airbyte alerts on failed syncs, from Airbyte's airbyte.syncs counter
// (status=failed) as an OpenTelemetry Collector exports it to Prometheus.
type Airbyte struct {
	Namespace  string
	SyncFailed Check
	// Window is how long one failure keeps the alert firing.
	Window string
}

// Streaming alerts on Kafka consumer groups, from kafka-exporter.
type Streaming struct {
	// ConsumerGroups are the groups to watch.
	ConsumerGroups []string
	// Lag fires while a group's lag is above Ratio messages.
	Lag Check
	// Stalled fires when a group with lag has committed no offset for
	// Window.
	Stalled Check
	Window  string
}

// DataHubConsumerGroups are the Kafka consumer groups of DataHub's GMS and
// its consumers (METADATA_CHANGE_LOG_KAFKA_CONSUMER_GROUP_ID,
// METADATA_CHANGE_PROPOSAL_KAFKA_CONSUMER_GROUP_ID and the usage event
// consumer's defaults).
var DataHubConsumerGroups = []string{"datahub-usage-event-consumer-job-client", "generic-mae-consumer-job-client", "generic-mce-consumer-job-client"}

// Security is the security pack: unauthorized and forbidden requests at
// the Kubernetes API server and at the ingress in front of the apps.
type Security struct {
	Namespaces []string
	// APIUnauthorized, APIForbidden: 401 and 403 answers of the API
	// server per second above Ratio.
	APIUnauthorized Check
	APIForbidden    Check
	// IngressDenied: 401 and 403 answers per second of an ingress route
	// above Ratio; only with an ingress.
	IngressDenied Check
}

// Jobs alerts on Kubernetes Jobs whose Failed condition is true, from
// kube-state-metrics.
type Jobs struct {
	// Namespaces scopes the alert; empty reads every namespace.
	Namespaces []string
	Failed     Check
}

// Pipeline is a pipeline with an SLA and/or a freshness window. Exactly one
// of AirflowDAG, CronJob and LastSuccess is set; SLA needs AirflowDAG or
// CronJob.
type Pipeline struct {
	Name string
	// AirflowDAG is a DAG id; AirflowNamespace scopes its metrics.
	AirflowDAG       string
	AirflowNamespace string
	CronJob          *CronJob
	// LastSuccess selects a metric whose value is the Unix time the data
	// was last refreshed.
	LastSuccess *Selector
	// SLA and Freshness are Prometheus durations; "" is off.
	SLA       string
	Freshness string
	Severity  string
	Runbook   string
}

// CronJob names a CronJob.
type CronJob struct {
	Namespace, Name string
}

// Selector picks the series of one metric by label values.
type Selector struct {
	Metric   string
	Matchers map[string]string
}

// Quality fires while a metric is above or below a threshold: exactly one
// of Above and Below is set.
type Quality struct {
	Name string
	Selector
	Above, Below *float64
	For          string
	Severity     string
	Summary      string
	Runbook      string
}

// Alert names of the packs.
const (
	AlertPodCrashLooping              = "PodCrashLooping"
	AlertPodNotReady                  = "PodNotReady"
	AlertHTTPErrorRateHigh            = "HTTPErrorRateHigh"
	AlertHTTPLatencyHigh              = "HTTPLatencyHigh"
	AlertContainerCPUNearLimit        = "ContainerCPUNearLimit"
	AlertContainerMemoryNearLimit     = "ContainerMemoryNearLimit"
	AlertPersistentVolumeFillingUp    = "PersistentVolumeFillingUp"
	AlertAirflowDAGRunFailed          = "AirflowDAGRunFailed"
	AlertAirbyteSyncFailed            = "AirbyteSyncFailed"
	AlertKafkaConsumerLagHigh         = "KafkaConsumerLagHigh"
	AlertKafkaConsumerStalled         = "KafkaConsumerStalled"
	AlertAPIServerUnauthorized        = "APIServerUnauthorizedRequests"
	AlertAPIServerForbidden           = "APIServerForbiddenRequests"
	AlertIngressDeniedRequests        = "IngressDeniedRequests"
	AlertJobFailed                    = "JobFailed"
	AlertPipelineOverSLA              = "PipelineOverSLA"
	AlertDataNotFresh                 = "DataNotFresh"
	AlertDataQualityThresholdBreached = "DataQualityThresholdBreached"
)

// slaWindow is how far back PipelineOverSLA looks for finished Airflow
// runs; a slow run keeps the alert firing this long after it ends.
const slaWindow = "1h"

func (o *Options) infrastructureGroups() ([]Group, error) {
	p := o.Infrastructure
	if p == nil {
		return nil, nil
	}
	if len(p.Namespaces) == 0 {
		return nil, fmt.Errorf("no namespaces to watch")
	}
	// One group for every namespace: the same alert in one group per
	// namespace would be a duplicate rule to promtool's linter.
	g := Group{Name: "galley-infrastructure"}
	add := func(c Check, r Rule) {
		if c.Enabled {
			g.Rules = append(g.Rules, withCheck(c, r))
		}
	}
	inNS := oneOf("namespace", uniqueSorted(p.Namespaces))

	add(p.CrashLooping, Rule{
		Alert: AlertPodCrashLooping,
		Expr: "max_over_time(" + selector("kube_pod_container_status_waiting_reason", inNS, eq("reason", "CrashLoopBackOff")) +
			"[5m]) >= 1",
		Annotations: map[string]string{
			"summary":     "Pod {{ $labels.namespace }}/{{ $labels.pod }} is crash-looping",
			"description": "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} keeps crashing and waits in CrashLoopBackOff.",
		},
	})
	add(p.NotReady, Rule{
		Alert: AlertPodNotReady,
		Expr: lines(
			"max by (namespace, pod) (",
			"  "+selector("kube_pod_status_phase", inNS, re("phase", "Pending|Unknown|Failed"))+" == 1",
			"  or "+selector("kube_pod_status_ready", inNS, eq("condition", "false"))+" == 1",
			")",
			"unless on (namespace, pod) ("+selector("kube_pod_status_phase", inNS, eq("phase", "Succeeded"))+" == 1)",
			"unless on (namespace, pod) "+selector("kube_pod_owner", inNS, eq("owner_kind", "Job")),
		),
		Annotations: map[string]string{
			"summary":     "Pod {{ $labels.namespace }}/{{ $labels.pod }} is not ready",
			"description": "Pod {{ $labels.namespace }}/{{ $labels.pod }} has been pending, failed or not ready for longer than " + orNow(p.NotReady.For) + ".",
		},
	})
	if ing, ok := ingresses[o.Ingress]; ok {
		ns := uniqueSorted(p.Namespaces)
		add(p.ErrorRate, Rule{
			Alert: AlertHTTPErrorRateHigh,
			Expr: ing.withNamespace(ns, lines(
				ing.sum(ing.requests(ns, re(ing.code, "5.."))),
				"  / "+ing.sum(ing.requests(ns)),
				"> "+number(p.ErrorRate.Ratio),
			)),
			Annotations: map[string]string{
				"summary":     o.Ingress + " route {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} fails {{ $value | humanizePercentage }} of its requests",
				"description": "More than " + percent(p.ErrorRate.Ratio) + " of the requests " + o.Ingress + " sends to {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} end in a 5xx status.",
			},
		})
		add(p.Latency, Rule{
			Alert: AlertHTTPLatencyHigh,
			Expr:  ing.withNamespace(ns, ing.p99(ns)+" > "+number(p.Latency.Ratio)),
			Annotations: map[string]string{
				"summary":     o.Ingress + " route {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} answers in {{ $value | humanizeDuration }} at p99",
				"description": "The 99th percentile of the request durations " + o.Ingress + " measures for {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} has been above " + number(p.Latency.Ratio) + "s for " + orNow(p.Latency.For) + ".",
			},
		})
	}
	containers := []string{inNS, ne("container", ""), ne("container", "POD")}
	limit := func(resource string) string {
		return "sum by (namespace, pod, container) (" + selector("kube_pod_container_resource_limits", inNS, eq("resource", resource)) + ")"
	}
	add(p.CPU, Rule{
		Alert: AlertContainerCPUNearLimit,
		Expr: lines(
			"sum by (namespace, pod, container) (rate("+selector("container_cpu_usage_seconds_total", containers...)+"[5m]))",
			"  / "+limit("cpu"),
			"> "+number(p.CPU.Ratio),
		),
		Annotations: map[string]string{
			"summary":     "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its CPU limit",
			"description": "The container has used more than " + percent(p.CPU.Ratio) + " of its CPU limit for " + orNow(p.CPU.For) + "; it is throttled at the limit.",
		},
	})
	add(p.Memory, Rule{
		Alert: AlertContainerMemoryNearLimit,
		Expr: lines(
			"sum by (namespace, pod, container) ("+selector("container_memory_working_set_bytes", containers...)+")",
			"  / "+limit("memory"),
			"> "+number(p.Memory.Ratio),
		),
		Annotations: map[string]string{
			"summary":     "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its memory limit",
			"description": "The container's working set has been above " + percent(p.Memory.Ratio) + " of its memory limit for " + orNow(p.Memory.For) + "; it will be OOM-killed at the limit.",
		},
	})
	volume := func(metric string) string {
		return "max by (namespace, persistentvolumeclaim) (" + selector(metric, inNS) + ")"
	}
	add(p.Volume, Rule{
		Alert: AlertPersistentVolumeFillingUp,
		Expr:  lines(volume("kubelet_volume_stats_used_bytes"), "  / "+volume("kubelet_volume_stats_capacity_bytes"), "> "+number(p.Volume.Ratio)),
		Annotations: map[string]string{
			"summary":     "Volume {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is {{ $value | humanizePercentage }} full",
			"description": "The persistent volume claimed by {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} is fuller than " + percent(p.Volume.Ratio) + ".",
		},
	})
	return []Group{g}, nil
}

func (o *Options) dataJourneyGroups() ([]Group, error) {
	p := o.DataJourney
	if p == nil {
		return nil, nil
	}
	g := Group{Name: "galley-data-journey"}
	if a := p.Airflow; a != nil && a.DAGRunFailed.Enabled {
		if err := positive("airflow window", a.Window); err != nil {
			return nil, err
		}
		failed := selector("airflow_dagrun_failed_count", scope(a.Namespace)...)
		g.Rules = append(g.Rules, withCheck(a.DAGRunFailed, Rule{
			Alert: AlertAirflowDAGRunFailed,
			// StatsD's exporter creates a DAG's series at its first
			// failure, which increase() cannot see: a series that did not
			// exist a window ago counts as a failure too.
			Expr: lines(
				"sum by (namespace, dag_id) (increase("+failed+"["+a.Window+"])) > 0",
				"or count by (namespace, dag_id) (",
				"  "+failed,
				"  unless "+failed+" offset "+a.Window,
				")",
			),
			Annotations: map[string]string{
				"summary":     "Airflow DAG {{ $labels.dag_id }} failed",
				"description": "A run of DAG {{ $labels.dag_id }} in {{ $labels.namespace }} ended in the failed state in the last " + a.Window + ".",
			},
		}))
	}
	if a := p.Airbyte; a != nil && a.SyncFailed.Enabled {
		if err := positive("airbyte window", a.Window); err != nil {
			return nil, err
		}
		failed := selector("airbyte_syncs_total", append(scope(a.Namespace), eq("status", "failed"))...)
		g.Rules = append(g.Rules, withCheck(a.SyncFailed, Rule{
			Alert: AlertAirbyteSyncFailed,
			// As for Airflow: a connection's failed series appears at its
			// first failure.
			Expr: lines(
				"sum by (namespace, connection_id) (increase("+failed+"["+a.Window+"])) > 0",
				"or count by (namespace, connection_id) (",
				"  "+failed,
				"  unless "+failed+" offset "+a.Window,
				")",
			),
			Annotations: map[string]string{
				"summary":     "Airbyte sync of connection {{ $labels.connection_id }} failed",
				"description": "A sync of Airbyte connection {{ $labels.connection_id }} in {{ $labels.namespace }} failed in the last " + a.Window + ": the data it loads is missing or partial.",
			},
		}))
	}
	if st := p.Streaming; st != nil && len(st.ConsumerGroups) > 0 {
		groups := oneOf("consumergroup", uniqueSorted(st.ConsumerGroups))
		lag := "sum by (namespace, consumergroup, topic) (" + selector("kafka_consumergroup_lag", groups) + ")"
		if st.Lag.Enabled {
			g.Rules = append(g.Rules, withCheck(st.Lag, Rule{
				Alert: AlertKafkaConsumerLagHigh,
				Expr:  lag + " > " + number(st.Lag.Ratio),
				Annotations: map[string]string{
					"summary":     "Consumer group {{ $labels.consumergroup }} is {{ $value }} messages behind on {{ $labels.topic }}",
					"description": "Kafka consumer group {{ $labels.consumergroup }} has had more than " + number(st.Lag.Ratio) + " unread messages on topic {{ $labels.topic }} for " + orNow(st.Lag.For) + ": what it feeds is late.",
				},
			}))
		}
		if st.Stalled.Enabled {
			if err := positive("streaming window", st.Window); err != nil {
				return nil, err
			}
			g.Rules = append(g.Rules, withCheck(st.Stalled, Rule{
				Alert: AlertKafkaConsumerStalled,
				Expr: lines(
					"("+lag+" > 0)",
					"and on (namespace, consumergroup, topic)",
					"(sum by (namespace, consumergroup, topic) (changes("+selector("kafka_consumergroup_current_offset", groups)+"["+st.Window+"])) == 0)",
				),
				Annotations: map[string]string{
					"summary":     "Consumer group {{ $labels.consumergroup }} has stopped consuming {{ $labels.topic }}",
					"description": "Kafka consumer group {{ $labels.consumergroup }} has unread messages on {{ $labels.topic }} but committed no offset for " + st.Window + ": its consumers are down or stuck.",
				},
			}))
		}
	}
	if j := p.Jobs; j != nil && j.Failed.Enabled {
		ns := scope(j.Namespaces...)
		g.Rules = append(g.Rules, withCheck(j.Failed, Rule{
			Alert: AlertJobFailed,
			Expr: lines(
				"max by (namespace, job_name, owner_kind, owner_name) (",
				"  ("+selector("kube_job_failed", append(ns, eq("condition", "true"))...)+" == 1)",
				"  * on (namespace, job_name) group_left (owner_kind, owner_name) "+selector("kube_job_owner", ns...),
				")",
			),
			Annotations: map[string]string{
				"summary":     "Job {{ $labels.namespace }}/{{ $labels.job_name }} failed",
				"description": "Job {{ $labels.namespace }}/{{ $labels.job_name }} (created by {{ $labels.owner_kind }} {{ $labels.owner_name }}) exhausted its retries or deadline. The alert clears when the Job is deleted or replaced by the CronJob's history limit.",
			},
		}))
	}
	pipelines := slices.Clone(p.Pipelines)
	slices.SortFunc(pipelines, func(a, b Pipeline) int { return strings.Compare(a.Name, b.Name) })
	for _, pl := range pipelines {
		rules, err := pipelineRules(pl)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", pl.Name, err)
		}
		g.Rules = append(g.Rules, rules...)
	}
	quality := slices.Clone(p.Quality)
	slices.SortFunc(quality, func(a, b Quality) int { return strings.Compare(a.Name, b.Name) })
	for _, q := range quality {
		r, err := qualityRule(q)
		if err != nil {
			return nil, fmt.Errorf("quality check %s: %w", q.Name, err)
		}
		g.Rules = append(g.Rules, r)
	}
	return []Group{g}, nil
}

func pipelineRules(p Pipeline) ([]Rule, error) {
	sources := 0
	for _, set := range []bool{p.AirflowDAG != "", p.CronJob != nil, p.LastSuccess != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return nil, fmt.Errorf("set exactly one of an Airflow DAG, a CronJob and a lastSuccess metric")
	case p.SLA == "" && p.Freshness == "":
		return nil, fmt.Errorf("set an SLA, a freshness window or both")
	case p.SLA != "" && p.LastSuccess != nil:
		return nil, fmt.Errorf("an SLA needs an Airflow DAG or a CronJob")
	}
	labels := map[string]string{"pipeline": p.Name, SeverityLabel: p.Severity}
	annotations := func(summary, description string) map[string]string {
		a := map[string]string{"summary": summary, "description": description}
		if p.Runbook != "" {
			a["runbook_url"] = p.Runbook
		}
		return a
	}
	var rules []Rule
	if p.SLA != "" {
		if err := positive("sla", p.SLA); err != nil {
			return nil, err
		}
		sla, _ := model.ParseDuration(p.SLA)
		var expr string
		switch {
		case p.AirflowDAG != "":
			m := append(scope(p.AirflowNamespace), eq("dag_id", p.AirflowDAG))
			avg := func(suffix string) string {
				return "sum by (namespace, dag_id) (increase(" + selector("airflow_dagrun_duration"+suffix, m...) + "[" + slaWindow + "]))"
			}
			expr = lines(avg("_sum"), "  / "+avg("_count"), "> "+number(time.Duration(sla).Seconds()))
		case p.CronJob != nil:
			ns := eq("namespace", p.CronJob.Namespace)
			expr = lines(
				"max by (namespace, job_name) (",
				"  (time() - "+selector("kube_job_status_start_time", ns)+")",
				"  and on (namespace, job_name) ("+selector("kube_job_status_active", ns)+" > 0)",
				"  and on (namespace, job_name) "+selector("kube_job_owner", ns, eq("owner_kind", "CronJob"), eq("owner_name", p.CronJob.Name)),
				")",
				"> "+number(time.Duration(sla).Seconds()),
			)
		}
		rules = append(rules, Rule{
			Alert:  AlertPipelineOverSLA,
			Expr:   expr,
			Labels: labels,
			Annotations: annotations(
				"Pipeline "+p.Name+" runs longer than its SLA of "+p.SLA,
				"A run of pipeline "+p.Name+" has taken {{ $value | humanizeDuration }}, more than its SLA of "+p.SLA+".",
			),
		})
	}
	if p.Freshness != "" {
		if err := positive("freshness", p.Freshness); err != nil {
			return nil, err
		}
		window, _ := model.ParseDuration(p.Freshness)
		var expr string
		switch {
		case p.AirflowDAG != "":
			m := append(scope(p.AirflowNamespace), eq("dag_id", p.AirflowDAG))
			ok := selector("airflow_dagrun_duration_count", m...)
			// The DAG is watched once it has run at all (its success or
			// failure series exists): a fresh install, whose DAG has not
			// run yet, is not stale. A success counts when the counter
			// grew, or its series appeared, within the window (see
			// AirflowDAGRunFailed).
			expr = lines(
				"count by (namespace, dag_id) ("+ok+" or "+selector("airflow_dagrun_failed_count", m...)+")",
				"unless on (namespace, dag_id) (",
				"  sum by (namespace, dag_id) (increase("+ok+"["+p.Freshness+"])) > 0",
				"  or count by (namespace, dag_id) ("+ok+" unless "+ok+" offset "+p.Freshness+")",
				")",
			)
		case p.CronJob != nil:
			m := []string{eq("namespace", p.CronJob.Namespace), eq("cronjob", p.CronJob.Name)}
			// A CronJob that never succeeded counts from its creation.
			expr = lines(
				"time() - max by (namespace, cronjob) (",
				"  "+selector("kube_cronjob_status_last_successful_time", m...),
				"  or "+selector("kube_cronjob_created", m...),
				")",
				"> "+number(time.Duration(window).Seconds()),
			)
		case p.LastSuccess != nil:
			expr = "time() - " + selector(p.LastSuccess.Metric, matchers(p.LastSuccess.Matchers)...) + " > " + number(time.Duration(window).Seconds())
		}
		rules = append(rules, Rule{
			Alert:  AlertDataNotFresh,
			Expr:   expr,
			Labels: labels,
			Annotations: annotations(
				"The data of pipeline "+p.Name+" is older than "+p.Freshness,
				"Pipeline "+p.Name+" has not completed successfully for longer than its freshness window of "+p.Freshness+".",
			),
		})
	}
	return rules, nil
}

func qualityRule(q Quality) (Rule, error) {
	var op string
	var threshold float64
	switch {
	case (q.Above == nil) == (q.Below == nil):
		return Rule{}, fmt.Errorf("set exactly one of above and below")
	case q.Above != nil:
		op, threshold = ">", *q.Above
	default:
		op, threshold = "<", *q.Below
	}
	summary := q.Summary
	if summary == "" {
		summary = "Data quality check " + q.Name + " failed: " + q.Metric + " is {{ $value }}"
	}
	r := withCheck(Check{Enabled: true, For: q.For, Severity: q.Severity}, Rule{
		Alert:  AlertDataQualityThresholdBreached,
		Expr:   selector(q.Metric, matchers(q.Matchers)...) + " " + op + " " + number(threshold),
		Labels: map[string]string{"quality_check": q.Name},
		Annotations: map[string]string{
			"summary":     summary,
			"description": "Data quality check " + q.Name + " wants " + q.Metric + " " + map[string]string{">": "at most", "<": "at least"}[op] + " " + number(threshold) + "; it is {{ $value }}.",
		},
	})
	if q.Runbook != "" {
		r.Annotations["runbook_url"] = q.Runbook
	}
	return r, nil
}

// withCheck applies a check's for and severity to r.
func withCheck(c Check, r Rule) Rule {
	if c.For != "" {
		if d, err := model.ParseDuration(c.For); err != nil || d != 0 {
			r.For = c.For // an invalid one is reported by checkGroups
		}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[SeverityLabel] = c.Severity
	return r
}

// scope matches any of the namespaces; none matches every namespace.
func scope(namespaces ...string) []string {
	var ns []string
	for _, n := range namespaces {
		if n != "" {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		return nil
	}
	return []string{oneOf("namespace", uniqueSorted(ns))}
}

// lines joins the lines of an expression: the rules files show them as
// YAML literal blocks.
func lines(l ...string) string { return strings.Join(l, "\n") }

func positive(what, d string) error {
	v, err := model.ParseDuration(d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if v <= 0 {
		return fmt.Errorf("%s: must be longer than zero", what)
	}
	return nil
}

func orNow(d string) string {
	if v, err := model.ParseDuration(d); d == "" || err != nil || v == 0 {
		return "a moment"
	}
	return d
}

// percent rounds to four decimals so that 0.85 reads 85%, not
// 85.00000000000001%.
func percent(ratio float64) string { return number(math.Round(ratio*1e6)/1e4) + "%" }

func uniqueSorted(s []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

func (o *Options) securityGroups() ([]Group, error) {
	p := o.Security
	if p == nil {
		return nil, nil
	}
	g := Group{Name: "galley-security"}
	api := func(c Check, alert, code, what string) {
		if !c.Enabled {
			return
		}
		g.Rules = append(g.Rules, withCheck(c, Rule{
			Alert: alert,
			Expr:  "sum by (namespace, job) (rate(" + selector("apiserver_request_total", eq("code", code)) + "[5m])) > " + number(c.Ratio),
			Annotations: map[string]string{
				"summary":     "The Kubernetes API server answers {{ $value | humanize }} " + what + " requests per second",
				"description": "More than " + number(c.Ratio) + " requests per second to the API server are answered " + code + " (" + what + "): a client uses a revoked or wrong credential, or probes for access.",
			},
		}))
	}
	api(p.APIUnauthorized, AlertAPIServerUnauthorized, "401", "unauthorized")
	api(p.APIForbidden, AlertAPIServerForbidden, "403", "forbidden")
	if ing, ok := ingresses[o.Ingress]; ok && p.IngressDenied.Enabled && len(p.Namespaces) > 0 {
		ns := uniqueSorted(p.Namespaces)
		g.Rules = append(g.Rules, withCheck(p.IngressDenied, Rule{
			Alert: AlertIngressDeniedRequests,
			Expr:  ing.withNamespace(ns, ing.sum(ing.requests(ns, re(ing.code, "401|403")))+" > "+number(p.IngressDenied.Ratio)),
			Annotations: map[string]string{
				"summary":     o.Ingress + " route {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} denies {{ $value | humanize }} requests per second",
				"description": "More than " + number(p.IngressDenied.Ratio) + " requests per second to {{ $labels." + ing.ident + " }} in {{ $labels.namespace }} are answered 401 or 403: expired credentials of a client, or someone guessing.",
			},
		}))
	}
	return []Group{g}, nil
}
