package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// App is an app that gets a golden-signals dashboard.
type App struct {
	Name, Namespace string
	// Product is the catalog source the app runs ("" for none galley
	// knows): its own metrics get panels.
	Product string
	// Workloads are the app's pod controllers; their pods are the app's.
	Workloads []Workload
}

// Workload is a pod controller: Deployment, StatefulSet, DaemonSet, Job,
// CronJob, ReplicaSet or a bare Pod.
type Workload struct {
	Kind, Name string
}

// DashboardLabel is the label Grafana's dashboard sidecar looks for
// (kube-prometheus-stack and the grafana chart default to it).
const DashboardLabel = "grafana_dashboard"

// podRand is the alphabet of the random parts of pod names (Kubernetes'
// rand.SafeEncodeString): vowels and 0, 1, 3 never occur, which keeps
// "airflow-scheduler-db-0" from looking like a pod of Deployment
// airflow-scheduler.
const podRand = "[bcdfghjklmnpqrstvwxz2456789]"

// podNameSuffix is what a controller appends to its name to name a pod.
var podNameSuffix = map[string]string{
	"Deployment":  "-" + podRand + "{1,10}-" + podRand + "{5}", // <pod-template-hash>-<random>
	"StatefulSet": "-[0-9]+",                                   // <ordinal>
	"DaemonSet":   "-" + podRand + "{5}",
	"ReplicaSet":  "-" + podRand + "{5}",
	"Job":         "(-[0-9]+)?-" + podRand + "{5}",        // [<index>-]<random>
	"CronJob":     "-[0-9]+(-[0-9]+)?-" + podRand + "{5}", // <scheduled minute>-[<index>-]<random>
	"Pod":         "",
}

// podRegexp matches the names of the app's pods: Prometheus anchors it.
func podRegexp(ws []Workload) (string, error) {
	var alts []string
	for _, w := range ws {
		suffix, ok := podNameSuffix[w.Kind]
		if !ok {
			return "", fmt.Errorf("workload %s %s: not a pod controller", w.Kind, w.Name)
		}
		alts = append(alts, regexp.QuoteMeta(w.Name)+suffix)
	}
	if len(alts) == 0 {
		return "", fmt.Errorf("no workloads")
	}
	return strings.Join(uniqueSorted(alts), "|"), nil
}

type dashboard struct {
	Annotations   map[string][]any `json:"annotations"`
	Description   string           `json:"description"`
	Editable      bool             `json:"editable"`
	Panels        []panel          `json:"panels"`
	Refresh       string           `json:"refresh"`
	SchemaVersion int              `json:"schemaVersion"`
	Tags          []string         `json:"tags"`
	Templating    map[string][]any `json:"templating"`
	Time          map[string]any   `json:"time"`
	Timezone      string           `json:"timezone"`
	Title         string           `json:"title"`
	UID           string           `json:"uid"`
	Version       int              `json:"version"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  datasource     `json:"datasource"`
	GridPos     gridPos        `json:"gridPos"`
	FieldConfig map[string]any `json:"fieldConfig"`
	Options     map[string]any `json:"options"`
	Targets     []target       `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type target struct {
	Datasource   datasource `json:"datasource"`
	Expr         string     `json:"expr"`
	LegendFormat string     `json:"legendFormat"`
	RefID        string     `json:"refId"`
}

var promDatasource = datasource{Type: "prometheus", UID: "${datasource}"}

// dashboardPanels are the golden signals of one app: traffic, errors,
// latency and saturation, read from its pods only.
func (o *Options) dashboardPanels(app App) ([]panel, error) {
	pods, err := podRegexp(app.Workloads)
	if err != nil {
		return nil, err
	}
	inApp := []string{eq("namespace", app.Namespace), re("pod", pods)}
	with := func(extra ...string) []string { return append(slices.Clone(inApp), extra...) }
	containers := with(ne("container", ""), ne("container", "POD"))
	t := func(expr, legend string) target { return target{Expr: expr, LegendFormat: legend} }
	var panels []panel
	// HTTP traffic is read at the ingress in front of the app: none of
	// the apps of a data stack count their own requests the same way.
	if ing, ok := ingresses[o.Ingress]; ok {
		ns := []string{app.Namespace}
		latency := func(q string) string {
			e := "histogram_quantile(" + q + ", sum by (le) (rate(" + selector(ing.duration+"_bucket", ing.scope(ns)) + "[5m])))"
			if ing.durationScale != 1 {
				e += " / " + number(ing.durationScale)
			}
			return e
		}
		panels = append(panels, panel{
			Title:       "Traffic",
			Description: "Requests per second " + o.Ingress + " routes to the app's namespace, by status code (" + ing.counter + ").",
			FieldConfig: unit("reqps"),
			Targets:     []target{t("sum by ("+ing.code+") ("+ing.requests(ns)+")", "{{"+ing.code+"}}")},
		}, panel{
			Title:       "Errors",
			Description: "Share of those requests answered with a 5xx status.",
			FieldConfig: unit("percentunit"),
			Targets:     []target{t("sum("+ing.requests(ns, re(ing.code, "5.."))+") / sum("+ing.requests(ns)+")", "5xx")},
		}, panel{
			Title:       "Latency",
			Description: "Request duration quantiles at the ingress (" + ing.duration + ").",
			FieldConfig: unit("s"),
			Targets:     []target{t(latency("0.5"), "p50"), t(latency("0.95"), "p95"), t(latency("0.99"), "p99")},
		}, panel{
			Title:       "Unauthorized and forbidden",
			Description: "Requests per second answered 401 or 403.",
			FieldConfig: unit("reqps"),
			Targets:     []target{t("sum by ("+ing.code+") ("+ing.requests(ns, re(ing.code, "401|403"))+")", "{{"+ing.code+"}}")},
		})
	}
	panels = append(panels, []panel{{
		Title:       "Saturation: CPU",
		Description: "CPU cores used by each pod, and its limit.",
		FieldConfig: unit("short"),
		Targets: []target{
			t("sum by (pod) (rate("+selector("container_cpu_usage_seconds_total", containers...)+"[5m]))", "{{pod}} used"),
			t("sum by (pod) ("+selector("kube_pod_container_resource_limits", with(eq("resource", "cpu"))...)+")", "{{pod}} limit"),
		},
	}, {
		Title:       "Saturation: memory",
		Description: "Working-set memory of each pod, and its limit.",
		FieldConfig: unit("bytes"),
		Targets: []target{
			t("sum by (pod) ("+selector("container_memory_working_set_bytes", containers...)+")", "{{pod}} used"),
			t("sum by (pod) ("+selector("kube_pod_container_resource_limits", with(eq("resource", "memory"))...)+")", "{{pod}} limit"),
		},
	}, {
		Title:       "Pods: restarts and readiness",
		Description: "Container restarts over the last hour, and pods not ready.",
		FieldConfig: unit("short"),
		Targets: []target{
			t("sum by (pod) (increase("+selector("kube_pod_container_status_restarts_total", inApp...)+"[1h]))", "{{pod}} restarts"),
			t("sum("+selector("kube_pod_status_ready", with(eq("condition", "false"))...)+")", "not ready"),
		},
	}}...)
	panels = append(panels, o.productPanels(app)...)
	return o.finishPanels(panels)
}

// finishPanels keeps the panels whose metrics the stack's sources provide
// (an empty panel looks like an idle app), lays them out and parses every
// expression.
func (o *Options) finishPanels(panels []panel) ([]panel, error) {
	if o.Provided != nil {
		panels = slices.DeleteFunc(panels, func(p panel) bool {
			for _, tg := range p.Targets {
				if missing, err := o.Provided.Missing(tg.Expr); err != nil || len(missing) > 0 {
					return true
				}
			}
			return false
		})
	}
	for i := range panels {
		p := &panels[i]
		p.ID = i + 1
		p.Type = "timeseries"
		p.Datasource = promDatasource
		p.GridPos = gridPos{H: 8, W: 12, X: 12 * (i % 2), Y: 8 * (i / 2)}
		p.Options = map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "none"},
		}
		for j := range p.Targets {
			p.Targets[j].Datasource = promDatasource
			p.Targets[j].RefID = string(rune('A' + j))
			if err := ParseExpr(p.Targets[j].Expr); err != nil {
				return nil, fmt.Errorf("panel %q: invalid PromQL %q: %w", p.Title, p.Targets[j].Expr, err)
			}
		}
	}
	return panels, nil
}

func unit(u string) map[string]any {
	return map[string]any{"defaults": map[string]any{"unit": u}, "overrides": []any{}}
}

// dashboardUID is stable for a stack and app and fits Grafana's limit of
// 40 characters.
func dashboardUID(stack, app string) string {
	uid := stack + "-" + app
	if len(uid) <= 40 {
		return uid
	}
	sum := sha256.Sum256([]byte(stack + "/" + app))
	return uid[:23] + "-" + hex.EncodeToString(sum[:8])
}

func (o *Options) dashboardConfigMap(app App) (object, error) {
	panels, err := o.dashboardPanels(app)
	if err != nil {
		return object{}, err
	}
	return o.dashboardObject(app.Name, "Golden signals of app "+app.Name+" of stack "+o.StackName+", generated by galley.", panels)
}

// dashboardObject wraps panels in a dashboard and the dashboard in a
// ConfigMap for Grafana's sidecar.
func (o *Options) dashboardObject(name, description string, panels []panel) (object, error) {
	d := dashboard{
		Annotations:   map[string][]any{"list": {}},
		Description:   description,
		Panels:        panels,
		Refresh:       "1m",
		SchemaVersion: 39,
		Tags:          []string{"galley", o.StackName},
		Templating: map[string][]any{"list": {map[string]any{
			"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
		}}},
		Time:    map[string]any{"from": "now-6h", "to": "now"},
		Title:   o.StackName + " / " + name,
		UID:     dashboardUID(o.StackName, name),
		Version: 1,
	}
	js, err := indentJSON(d)
	if err != nil {
		return object{}, fmt.Errorf("encoding dashboard: %w", err)
	}
	cmName := o.StackName + "-dashboard-" + name
	return object{
		APIVersion: "v1",
		Kind:       "ConfigMap",
		Metadata:   o.metadata(cmName, map[string]string{DashboardLabel: "1"}),
		Data:       map[string]string{name + ".json": string(js)},
	}, nil
}

// OverviewName is the name of the platform overview dashboard; no app
// may have it.
const OverviewName = "overview"

// overviewPanels are the platform at a glance: each app's golden signals
// side by side (by namespace, from the ingress), and each pipeline's last
// success and run duration.
func (o *Options) overviewPanels() ([]panel, error) {
	t := func(expr, legend string) target { return target{Expr: expr, LegendFormat: legend} }
	var panels []panel
	var ns []string
	for _, a := range o.Dashboards {
		ns = append(ns, a.Namespace)
	}
	ns = uniqueSorted(ns)
	if ing, ok := ingresses[o.Ingress]; ok && len(ns) > 0 {
		by := "namespace"
		wrap := func(e string) string { return e }
		if ing.namespaceFrom != nil {
			by = ing.ident
			wrap = func(e string) string {
				return "label_replace(" + e + ", \"namespace\", \"$1\", " + strconv.Quote(ing.ident) + ", " + strconv.Quote(ing.namespaceFrom(ns)) + ")"
			}
		}
		sum := func(e string) string { return "sum by (" + by + ") (" + e + ")" }
		p99 := "histogram_quantile(0.99, sum by (" + by + ", le) (rate(" + selector(ing.duration+"_bucket", ing.scope(ns)) + "[5m])))"
		if ing.durationScale != 1 {
			p99 += " / " + number(ing.durationScale)
		}
		panels = append(panels, panel{
			Title: "Traffic by app namespace", Description: "Requests per second at the ingress.", FieldConfig: unit("reqps"),
			Targets: []target{t(wrap(sum(ing.requests(ns))), "{{namespace}}")},
		}, panel{
			Title: "Errors by app namespace", Description: "Share of requests answered 5xx.", FieldConfig: unit("percentunit"),
			Targets: []target{t(wrap(sum(ing.requests(ns, re(ing.code, "5.."))))+" / "+wrap(sum(ing.requests(ns))), "{{namespace}}")},
		}, panel{
			Title: "Latency p99 by app namespace", Description: "99th percentile of request durations at the ingress.", FieldConfig: unit("s"),
			Targets: []target{t(wrap(p99), "{{namespace}}")},
		})
	}
	if len(ns) > 0 {
		panels = append(panels, panel{
			Title: "Saturation by app namespace", Description: "CPU used against the CPU limits of each namespace's containers.", FieldConfig: unit("percentunit"),
			Targets: []target{t("sum by (namespace) (rate("+selector("container_cpu_usage_seconds_total", oneOf("namespace", ns), ne("container", ""))+"[5m])) / sum by (namespace) ("+selector("kube_pod_container_resource_limits", oneOf("namespace", ns), eq("resource", "cpu"))+")", "{{namespace}}")},
		})
	}
	var age, duration []target
	if dj := o.DataJourney; dj != nil {
		pipelines := slices.Clone(dj.Pipelines)
		slices.SortFunc(pipelines, func(a, b Pipeline) int { return strings.Compare(a.Name, b.Name) })
		for _, p := range pipelines {
			switch {
			case p.CronJob != nil:
				m := []string{eq("namespace", p.CronJob.Namespace), eq("cronjob", p.CronJob.Name)}
				age = append(age, t("time() - max("+selector("kube_cronjob_status_last_successful_time", m...)+")", p.Name))
				ns := eq("namespace", p.CronJob.Namespace)
				duration = append(duration, t("max((max by (job_name) ("+selector("kube_job_status_completion_time", ns)+") - max by (job_name) ("+selector("kube_job_status_start_time", ns)+")) and on (job_name) "+selector("kube_job_owner", ns, eq("owner_kind", "CronJob"), eq("owner_name", p.CronJob.Name))+")", p.Name))
			case p.AirflowDAG != "":
				m := append(scope(p.AirflowNamespace), eq("dag_id", p.AirflowDAG))
				duration = append(duration, t("sum(increase("+selector("airflow_dagrun_duration_sum", m...)+"[1d])) / sum(increase("+selector("airflow_dagrun_duration_count", m...)+"[1d]))", p.Name))
			case p.LastSuccess != nil:
				age = append(age, t("time() - max("+selector(p.LastSuccess.Metric, matchers(p.LastSuccess.Matchers)...)+")", p.Name))
			}
		}
		if dj.Airbyte != nil {
			panels = append(panels, panel{
				Title: "Airbyte syncs", Description: "Syncs ended per hour, by status.", FieldConfig: unit("short"),
				Targets: []target{t("sum by (status) (increase("+selector("airbyte_syncs_total", scope(dj.Airbyte.Namespace)...)+"[1h]))", "{{status}}")},
			})
		}
	}
	if len(age) > 0 {
		panels = append(panels, panel{Title: "Pipelines: time since last success", Description: "How old each pipeline's data is.", FieldConfig: unit("s"), Targets: age})
	}
	if len(duration) > 0 {
		panels = append(panels, panel{Title: "Pipelines: run duration", Description: "The last run of each CronJob pipeline; the mean over a day of each Airflow DAG's runs.", FieldConfig: unit("s"), Targets: duration})
	}
	return o.finishPanels(panels)
}

// productPanels are the panels of what the app's product itself exposes.
func (o *Options) productPanels(app App) []panel {
	ns := eq("namespace", app.Namespace)
	t := func(expr, legend string) target { return target{Expr: expr, LegendFormat: legend} }
	switch app.Product {
	case "airflow":
		return []panel{{
			Title:       "DAG runs",
			Description: "DAG runs ended per hour, by DAG, successful and failed (StatsD exporter).",
			FieldConfig: unit("short"),
			Targets: []target{
				t("sum by (dag_id) (increase("+selector("airflow_dagrun_duration_count", ns)+"[1h]))", "{{dag_id}} success"),
				t("sum by (dag_id) (increase("+selector("airflow_dagrun_failed_count", ns)+"[1h]))", "{{dag_id}} failed"),
			},
		}, {
			Title:       "Scheduler and pools",
			Description: "Scheduler heartbeats per minute, and the open and used slots of each pool.",
			FieldConfig: unit("short"),
			Targets: []target{
				t("sum(rate("+selector("airflow_scheduler_heartbeat", ns)+"[5m])) * 60", "heartbeats/min"),
				t("sum by (pool) ("+selector("airflow_pool_open_slots", ns)+")", "{{pool}} open"),
				t("sum by (pool) ("+selector("airflow_pool_used_slots", ns)+")", "{{pool}} used"),
			},
		}}
	case "airbyte":
		return []panel{{
			Title:       "Syncs",
			Description: "Syncs ended per hour, by status (airbyte.syncs).",
			FieldConfig: unit("short"),
			Targets:     []target{t("sum by (status) (increase(airbyte_syncs_total[1h]))", "{{status}}")},
		}}
	case "metabase":
		return []panel{{
			Title:       "Jetty requests",
			Description: "Requests per second Metabase's Jetty served, by response class, and the requests in flight.",
			FieldConfig: unit("reqps"),
			Targets: []target{
				t("sum by (code) (rate("+selector("jetty_responses_total", ns)+"[5m]))", "{{code}}"),
				t("sum("+selector("jetty_requests_active", ns)+")", "active"),
			},
		}}
	case "datahub":
		return []panel{{
			Title:       "Kafka consumer lag",
			Description: "Messages DataHub's consumer groups have yet to read (kafka-exporter).",
			FieldConfig: unit("short"),
			Targets:     []target{t("sum by (consumergroup) (kafka_consumergroup_lag{consumergroup=~\""+strings.Join(DataHubConsumerGroups, "|")+"\"})", "{{consumergroup}}")},
		}}
	}
	return nil
}
