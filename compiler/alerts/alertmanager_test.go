package alerts

import (
	"errors"
	"strings"
	"testing"

	amconfig "github.com/prometheus/alertmanager/config"
)

// TestAlertmanagerLoads: the routing galley writes is what Alertmanager's
// own loader reads back: the same receivers, the same tree of routes, the
// credentials as files.
func TestAlertmanagerLoads(t *testing.T) {
	b, err := fullOptions().Alertmanager.AlertmanagerYAML()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := amconfig.Load(string(b))
	if err != nil {
		t.Fatalf("Alertmanager rejects galley's alertmanager.yml: %v\n%s", err, b)
	}
	var names []string
	for _, r := range cfg.Receivers {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "analytics-slack analytics-email blackhole" {
		t.Errorf("receivers %s", got)
	}
	if got := cfg.Receivers[0].SlackConfigs[0].APIURLFile; got != "/etc/alertmanager/secrets/alertmanager-slack/webhook-url" {
		t.Errorf("slack api_url_file %q", got)
	}
	if got := cfg.Receivers[1].EmailConfigs[0].AuthPasswordFile; got != "/etc/alertmanager/secrets/alertmanager-smtp/password" {
		t.Errorf("email auth_password_file %q", got)
	}
	r := cfg.Route
	if r.Receiver != "analytics-email" || len(r.Routes) != 2 || r.Routes[0].Receiver != "analytics-slack" || !r.Routes[0].Continue {
		t.Fatalf("route %+v", r)
	}
	var matchers []string
	for _, m := range r.Routes[1].Matchers {
		matchers = append(matchers, m.String())
	}
	if got := strings.Join(matchers, ","); got != `severity="info",team="analytics"` {
		t.Errorf("second route matchers %s", got)
	}
}

// TestAlertmanagerRejects: what galley's own checks let through but
// Alertmanager refuses stops the build, with Alertmanager's reason.
func TestAlertmanagerRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Route)
		want   string
	}{
		{"zero group interval", func(r *Route) { r.GroupInterval = "0s" }, "group_interval cannot be zero"},
		{"zero repeat interval", func(r *Route) { r.RepeatInterval = "0m" }, "repeat_interval cannot be zero"},
		{"group by a bad label", func(r *Route) { r.GroupBy = []string{"app.kubernetes.io/name"} }, `invalid label name "app.kubernetes.io/name" in group_by list`},
		{"group by twice", func(r *Route) { r.GroupBy = []string{"namespace", "namespace"} }, `duplicated label "namespace" in group_by`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fullOptions()
			tc.change(&o.Alertmanager.Route)
			_, err := Generate(o)
			var ae *AlertmanagerError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an AlertmanagerError with %q", err, tc.want)
			}
			if _, err := o.ChartValues(); !errors.As(err, &ae) {
				t.Errorf("ChartValues: got %v, want an AlertmanagerError", err)
			}
		})
	}
}
