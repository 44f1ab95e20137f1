package stack

import "testing"

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		want       string
	}{
		{"valuesFile", []string{"values", "valuesFiles", "patches"}, "did you mean valuesFiles?"},
		{"prometheus-sever", []string{"grafana", "prometheus-server", "prometheus"}, "did you mean prometheus-server?"},
		{"namespce", []string{"name", "namespace"}, "did you mean namespace?"},
		{"DependsOn", []string{"dependsOn"}, "did you mean dependsOn?"},
		{"delivry", []string{"delivery", "description"}, "did you mean delivery?"},
		{"postgress", []string{"postgres"}, "did you mean postgres?"},
		{"zzz", []string{"airflow", "metabase"}, ""},
		{"db", []string{"airflow", "metabase"}, ""},
		{"airflow", []string{"airflow"}, ""},
		{"x", nil, ""},
	} {
		if got := didYouMean(tc.name, tc.candidates); got != tc.want {
			t.Errorf("didYouMean(%q, %q) = %q, want %q", tc.name, tc.candidates, got, tc.want)
		}
	}
}
