package helm

import (
	"path"
	"sort"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// TemplateValuesKeys lists the .Values keys the template file (its path in
// the rendered output, e.g. "airflow/templates/secrets/x.yaml") reads, as
// keys of the top chart's values: a subchart's keys are under its name.
func TemplateValuesKeys(c *Chart, file string) []string {
	var keys []string
	walkCharts(c.chart, func(ch *chart.Chart) {
		for _, f := range ch.Templates {
			if path.Join(ch.ChartFullPath(), f.Name) != file {
				continue
			}
			s := &site{Expr: string(f.Data), Chart: ch.ChartFullPath()}
			keys = append(keys, valuesKeys(s)...)
		}
	})
	sort.Strings(keys)
	return keys
}

// SecretValuesKeys lists the values of the chart and its subcharts that
// name a Secret to use instead of one the chart generates: existingSecret,
// existingGmsSecret, brokerUrlSecretName, provisionSecret... in the top
// chart's terms. They are only candidates: a chart may ignore them (see
// compiler's hints, which check each by rendering).
func SecretValuesKeys(c *Chart) []string {
	var out []string
	walkCharts(c.chart, func(ch *chart.Chart) {
		prefix := ""
		if parts := strings.Split(ch.ChartFullPath(), "/charts/"); len(parts) > 1 {
			prefix = strings.Join(parts[1:], ".") + "."
		}
		var walk func(p string, v any)
		walk = func(p string, v any) {
			m, ok := v.(map[string]any)
			if !ok {
				return
			}
			for k, child := range m {
				kp := k
				if p != "" {
					kp = p + "." + k
				}
				if namesSecret(k) {
					if _, isMap := child.(map[string]any); !isMap {
						out = append(out, prefix+kp)
						continue
					}
				}
				walk(kp, child)
			}
		}
		walk("", ch.Values)
	})
	sort.Strings(out)
	return out
}

func namesSecret(k string) bool {
	l := strings.ToLower(k)
	return (strings.HasPrefix(l, "existing") && strings.Contains(l, "secret")) ||
		strings.HasSuffix(l, "secretname") || strings.HasPrefix(l, "provisionsecret")
}

func walkCharts(c *chart.Chart, fn func(*chart.Chart)) {
	fn(c)
	for _, d := range c.Dependencies() {
		walkCharts(d, fn)
	}
}
