package alerts

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestChartValues: for the plain prometheus chart, every pack's rules are
// one rules file in serverFiles, and the routing is alertmanager.yml with
// credentials read from mounted Secret files, never inlined.
func TestChartValues(t *testing.T) {
	o := fullOptions()
	o.Chart = true
	v, err := o.ChartValues()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`"serverFiles":{"alerting_rules.yml":{"groups":[{"name":"galley-infrastructure"`,
		`{"name":"galley-security"`, `{"name":"custom"`,
		`"api_url_file":"/etc/alertmanager/secrets/alertmanager-slack/webhook-url"`,
		`"auth_password_file":"/etc/alertmanager/secrets/alertmanager-smtp/password"`,
		`{"mountPath":"/etc/alertmanager/secrets/alertmanager-slack","name":"galley-alertmanager-slack","readOnly":true,"secretName":"alertmanager-slack"}`,
		`"routes":[{"continue":true,"matchers":["severity=\"critical\""],"receiver":"analytics-slack"}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("chart values lack %s:\n%s", want, got)
		}
	}
	files, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.Contains(f.Path, "configmap-") {
			t.Errorf("%s written for the plain chart", f.Path)
		}
	}
}
