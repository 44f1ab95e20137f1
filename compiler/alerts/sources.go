package alerts

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Source is something that exposes metrics Prometheus scrapes: a product
// an app of the stack runs, an ingress controller, or an exporter of the
// cluster. Its metric names were read from its source code or docs, in the
// version docs/monitoring.md names, never guessed: galley generates a rule
// only when every metric it reads has a source in the stack.
type Source struct {
	Name string
	// Kind is "app" (an app of the stack runs it), "ingress" or
	// "cluster".
	Kind string
	// Exporter is what serves the metrics, and Enable what turns it on.
	Exporter, Enable string
	// Metrics are the names as Prometheus stores them (histograms and
	// summaries with their _bucket, _sum and _count series).
	Metrics []string
}

// Source kinds.
const (
	KindApp     = "app"
	KindIngress = "ingress"
	KindCluster = "cluster"
)

// Sources is the catalog, by name. docs/monitoring.md cites the evidence
// for every name.
var Sources = map[string]Source{
	"kube-state-metrics": {
		Name: "kube-state-metrics", Kind: KindCluster, Exporter: "kube-state-metrics v2.3+",
		Enable: "kube-prometheus-stack: kubeStateMetrics.enabled (default true)",
		Metrics: []string{
			"kube_pod_container_status_waiting_reason", "kube_pod_status_phase", "kube_pod_status_ready",
			"kube_pod_owner", "kube_pod_container_resource_limits", "kube_pod_container_status_restarts_total",
			"kube_job_failed", "kube_job_owner", "kube_job_status_start_time", "kube_job_status_active",
			"kube_job_status_completion_time", "kube_cronjob_status_last_successful_time", "kube_cronjob_created",
		},
	},
	"cadvisor": {
		Name: "cadvisor", Kind: KindCluster, Exporter: "the kubelet's cAdvisor endpoint (/metrics/cadvisor)",
		Enable:  "kube-prometheus-stack: kubelet.serviceMonitor.cAdvisor (default true)",
		Metrics: []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"},
	},
	"kubelet": {
		Name: "kubelet", Kind: KindCluster, Exporter: "the kubelet (/metrics)",
		Enable:  "kube-prometheus-stack: kubelet.enabled (default true)",
		Metrics: []string{"kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes"},
	},
	"apiserver": {
		Name: "apiserver", Kind: KindCluster, Exporter: "kube-apiserver (/metrics)",
		Enable:  "kube-prometheus-stack: kubeApiServer.enabled (default true)",
		Metrics: []string{"apiserver_request_total"},
	},
	"kafka-exporter": {
		Name: "kafka-exporter", Kind: KindCluster, Exporter: "danielqsj/kafka_exporter",
		Enable:  "bitnami kafka chart: metrics.kafka.enabled, or the prometheus-kafka-exporter chart",
		Metrics: []string{"kafka_consumergroup_lag", "kafka_consumergroup_current_offset", "kafka_topic_partition_current_offset"},
	},
	"airflow": {
		Name: "airflow", Kind: KindApp, Exporter: "the official chart's StatsD exporter (files/statsd-mappings.yml)",
		Enable: "airflow chart: statsd.enabled (default true), scraped on the statsd Service's port 9102",
		Metrics: []string{
			"airflow_scheduler_heartbeat",
			"airflow_dagrun_duration_sum", "airflow_dagrun_duration_count",
			"airflow_dagrun_failed_sum", "airflow_dagrun_failed_count",
			"airflow_dagrun_schedule_delay_sum", "airflow_dagrun_schedule_delay_count",
			"airflow_task_duration_sum", "airflow_task_duration_count",
			"airflow_operator_successes", "airflow_operator_failures",
			"airflow_pool_open_slots", "airflow_pool_used_slots", "airflow_pool_starving_tasks",
			"airflow_dag_processing_last_run_seconds_ago",
		},
	},
	"airbyte": {
		Name: "airbyte", Kind: KindApp, Exporter: "Airbyte's OpenTelemetry metrics, through an OpenTelemetry Collector's Prometheus exporter",
		Enable: "airbyte chart: global.metrics.enabled and global.metrics.otlp.enabled with collectorEndpoint (Self-Managed Enterprise)",
		Metrics: []string{
			"airbyte_syncs_total", "airbyte_gb_moved", "airbyte_sync_duration",
			"airbyte_api_requests_total",
		},
	},
	"metabase": {
		Name: "metabase", Kind: KindApp, Exporter: "Metabase's Prometheus endpoint (MB_PROMETHEUS_SERVER_PORT)",
		Enable: "metabase chart: monitoring.enabled (port 9191) and monitoring.serviceMonitor.enabled",
		Metrics: []string{
			"jetty_requests_total", "jetty_responses_total", "jetty_requests_active",
			"jetty_request_time_max_seconds", "jvm_memory_bytes_used", "jvm_memory_bytes_max",
			"jvm_threads_current",
		},
	},
	"datahub": {
		Name: "datahub", Kind: KindApp, Exporter: "DataHub's Kafka consumer groups, read by kafka-exporter",
		Enable: "the Kafka of DataHub's prerequisites chart with its kafka-exporter (add kafka-exporter to sources.cluster)",
	},
	"ingress-nginx": {
		Name: "ingress-nginx", Kind: KindIngress, Exporter: "ingress-nginx controller (/metrics, port 10254)",
		Enable: "ingress-nginx chart: controller.metrics.enabled and controller.metrics.serviceMonitor.enabled",
		Metrics: []string{
			"nginx_ingress_controller_requests",
			"nginx_ingress_controller_request_duration_seconds_bucket",
			"nginx_ingress_controller_request_duration_seconds_sum",
			"nginx_ingress_controller_request_duration_seconds_count",
		},
	},
	"traefik": {
		Name: "traefik", Kind: KindIngress, Exporter: "Traefik's Prometheus metrics (entryPoint metrics)",
		Enable: "traefik chart: metrics.prometheus (default on, port 9100) with addServicesLabels",
		Metrics: []string{
			"traefik_service_requests_total",
			"traefik_service_request_duration_seconds_bucket",
			"traefik_service_request_duration_seconds_sum",
			"traefik_service_request_duration_seconds_count",
		},
	},
	"envoy-gateway": {
		Name: "envoy-gateway", Kind: KindIngress, Exporter: "the Envoy proxies of Envoy Gateway (/stats/prometheus)",
		Enable: "gateway-helm: EnvoyProxy telemetry.metrics.prometheus (default on)",
		Metrics: []string{
			"envoy_cluster_upstream_rq",
			"envoy_cluster_upstream_rq_time_bucket",
			"envoy_cluster_upstream_rq_time_sum",
			"envoy_cluster_upstream_rq_time_count",
		},
	},
}

// DefaultClusterSources are the exporters kube-prometheus-stack runs.
var DefaultClusterSources = []string{"apiserver", "cadvisor", "kube-state-metrics", "kubelet"}

// SourceNames is the catalog's names of one kind, sorted.
func SourceNames(kind string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(Sources)) {
		if Sources[name].Kind == kind {
			out = append(out, name)
		}
	}
	return out
}

// Provided is the set of metric names a stack's sources expose, plus the
// metrics the stack declares the cluster provides.
type Provided struct {
	by map[string]string // metric -> source ("" for declared)
}

// NewProvided collects the metrics of the named sources and extra.
func NewProvided(sources, extra []string) (*Provided, error) {
	p := &Provided{by: map[string]string{}}
	for _, name := range sources {
		s, ok := Sources[name]
		if !ok {
			return nil, fmt.Errorf("unknown metric source %q (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(Sources)), ", "))
		}
		for _, m := range s.Metrics {
			p.by[m] = name
		}
	}
	for _, m := range extra {
		if _, ok := p.by[m]; !ok {
			p.by[m] = ""
		}
	}
	return p, nil
}

// Has reports whether metric is provided.
func (p *Provided) Has(metric string) bool {
	_, ok := p.by[metric]
	return ok
}

// sourceOf is the catalog source that exposes metric, if any.
func sourceOf(metric string) (Source, bool) {
	for _, name := range slices.Sorted(maps.Keys(Sources)) {
		if slices.Contains(Sources[name].Metrics, metric) {
			return Sources[name], true
		}
	}
	return Source{}, false
}

// internalMetrics are series Prometheus writes itself.
var internalMetrics = map[string]bool{"ALERTS": true, "ALERTS_FOR_STATE": true, "up": true, "scrape_samples_scraped": true}

// Metrics returns the metric names expr selects, sorted. A selector
// without a literal name (a regexp on __name__) is skipped: no catalog can
// vouch for it.
func Metrics(expr string) ([]string, error) {
	e, err := promQL.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			set[vs.Name] = true
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				set[m.Value] = true
			}
		}
		return nil
	})
	return slices.Sorted(maps.Keys(set)), nil
}

// Missing returns the metrics of expr that p does not provide, with a
// hint saying what would provide each.
func (p *Provided) Missing(expr string) ([]string, error) {
	ms, err := Metrics(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if internalMetrics[m] || p.Has(m) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// MissingHint says what to do about metrics no source provides, once per
// source.
func MissingHint(missing []string) string {
	bySource := map[string][]string{}
	var unknown []string
	for _, m := range missing {
		if s, ok := sourceOf(m); ok {
			bySource[s.Name] = append(bySource[s.Name], m)
		} else {
			unknown = append(unknown, m)
		}
	}
	var hints []string
	for _, name := range slices.Sorted(maps.Keys(bySource)) {
		s := Sources[name]
		where := "monitoring.sources.cluster"
		switch s.Kind {
		case KindApp:
			where = "monitoring.sources.apps (an app running " + s.Name + ")"
		case KindIngress:
			where = "monitoring.sources.ingress"
		}
		hints = append(hints, fmt.Sprintf("%s come from %s (%s): add %q to %s", strings.Join(bySource[name], ", "), s.Exporter, s.Enable, s.Name, where))
	}
	if len(unknown) > 0 {
		hints = append(hints, fmt.Sprintf("no app galley knows exposes %s: if the cluster provides it, list it in monitoring.sources.metrics", strings.Join(unknown, ", ")))
	}
	return strings.Join(hints, "; ")
}
