package alerts

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ingressMetrics says how an ingress controller counts the requests it
// routes: which counter, which label holds the status code, which label
// tells the routes apart, and how a route maps to the namespace of the app
// behind it.
type ingressMetrics struct {
	counter, code, ident string
	// duration is a histogram without _bucket; durationScale turns its
	// unit into seconds.
	duration      string
	durationScale float64
	// scope selects the routes to apps of the namespaces.
	scope func(namespaces []string) string
	// namespaceFrom is the regexp that extracts the namespace from ident
	// when the metric has no namespace label of its own (nil when it has
	// one).
	namespaceFrom func(namespaces []string) string
}

var ingresses = map[string]ingressMetrics{
	// internal/ingress/metric/collectors/socket.go: requests and
	// request_duration_seconds, labelled with the Ingress's namespace,
	// name and the status code.
	"ingress-nginx": {
		counter: "nginx_ingress_controller_requests", code: "status", ident: "ingress",
		duration: "nginx_ingress_controller_request_duration_seconds", durationScale: 1,
		scope: func(ns []string) string { return oneOf("namespace", ns) },
	},
	// pkg/observability/metrics/prometheus.go: service metrics labelled
	// service="<namespace>-<name>-<port>@kubernetes" for Kubernetes
	// providers.
	"traefik": {
		counter: "traefik_service_requests_total", code: "code", ident: "service",
		duration: "traefik_service_request_duration_seconds", durationScale: 1,
		scope:         func(ns []string) string { return re("service", "("+longestFirst(ns)+")-.+@kubernetes") },
		namespaceFrom: func(ns []string) string { return "(" + longestFirst(ns) + ")-.+@kubernetes" },
	},
	// Envoy's cluster stats, one cluster per HTTPRoute rule named
	// httproute/<namespace>/<name>/rule/<n>; upstream_rq_time is in ms.
	"envoy-gateway": {
		counter: "envoy_cluster_upstream_rq", code: "envoy_response_code", ident: "envoy_cluster_name",
		duration: "envoy_cluster_upstream_rq_time", durationScale: 1000,
		scope:         func(ns []string) string { return re("envoy_cluster_name", "httproute/("+longestFirst(ns)+")/.+") },
		namespaceFrom: func([]string) string { return "httproute/([^/]+)/.+" },
	},
}

// longestFirst is an alternation of the namespaces, longest first, so that
// "data-lake" is not read as "data".
func longestFirst(ns []string) string {
	s := slices.Clone(ns)
	slices.SortStableFunc(s, func(a, b string) int { return len(b) - len(a) })
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(q, "|")
}

func (m ingressMetrics) by() string {
	if m.namespaceFrom == nil {
		return "namespace, " + m.ident
	}
	return m.ident
}

func (m ingressMetrics) requests(ns []string, extra ...string) string {
	return "rate(" + selector(m.counter, append([]string{m.scope(ns)}, extra...)...) + "[5m])"
}

func (m ingressMetrics) sum(e string) string { return "sum by (" + m.by() + ") (" + e + ")" }

func (m ingressMetrics) p99(ns []string) string {
	q := "histogram_quantile(0.99, sum by (" + m.by() + ", le) (rate(" + selector(m.duration+"_bucket", m.scope(ns)) + "[5m])))"
	if m.durationScale != 1 {
		q += " / " + number(m.durationScale)
	}
	return q
}

// withNamespace adds the namespace label where the metric lacks it.
func (m ingressMetrics) withNamespace(ns []string, e string) string {
	if m.namespaceFrom == nil {
		return e
	}
	return "label_replace(\n" + indent(e) + ",\n  \"namespace\", \"$1\", " + strconv.Quote(m.ident) + ", " + strconv.Quote(m.namespaceFrom(ns)) + "\n)"
}

func indent(e string) string {
	return "  " + strings.ReplaceAll(e, "\n", "\n  ")
}
