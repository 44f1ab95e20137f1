package alerts

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	amconfig "github.com/prometheus/alertmanager/config"
)

// SecretsDir is where the alertmanager chart's extraSecretMounts put the
// Secrets the routing names: /etc/alertmanager/secrets/<secret>/<key>.
const SecretsDir = "/etc/alertmanager/secrets"

// ChartValues are the values of the plain `prometheus` chart
// (prometheus-community) that load the stack's rules and routing, for a
// Prometheus run without the operator: every pack's groups as one rules
// file in serverFiles["alerting_rules.yml"] (the chart's prometheus.yml
// lists it in rule_files), and the routing as the bundled alertmanager's
// config, with the Secrets it names mounted by extraSecretMounts.
func (o Options) ChartValues() (map[string]any, error) {
	packs, err := o.Groups()
	if err != nil {
		return nil, err
	}
	var groups []Group
	for _, p := range packs {
		groups = append(groups, p.Groups...)
	}
	values := map[string]any{}
	if len(groups) > 0 {
		rules, err := plain(ruleSpec{Groups: groups})
		if err != nil {
			return nil, err
		}
		values["serverFiles"] = map[string]any{"alerting_rules.yml": rules}
	}
	if am := o.Alertmanager; am != nil {
		if err := am.validate(); err != nil {
			return nil, err
		}
		cfg, err := plain(am.native())
		if err != nil {
			return nil, err
		}
		var mounts []any
		for _, name := range am.secretNames() {
			mounts = append(mounts, map[string]any{
				"name": "galley-" + name, "secretName": name, "mountPath": SecretsDir + "/" + name, "readOnly": true,
			})
		}
		a := map[string]any{"config": cfg}
		if len(mounts) > 0 {
			a["extraSecretMounts"] = mounts
		}
		values["alertmanager"] = a
	}
	return values, nil
}

// plain turns v into the maps, slices and scalars Helm values are made of.
func plain(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Alertmanager's own configuration format (alertmanager.yml).
type nativeConfig struct {
	Route     nativeRoute      `json:"route"`
	Receivers []nativeReceiver `json:"receivers"`
}

type nativeRoute struct {
	Receiver       string        `json:"receiver"`
	Matchers       []string      `json:"matchers,omitempty"`
	GroupBy        []string      `json:"group_by,omitempty"`
	GroupWait      string        `json:"group_wait,omitempty"`
	GroupInterval  string        `json:"group_interval,omitempty"`
	RepeatInterval string        `json:"repeat_interval,omitempty"`
	Continue       bool          `json:"continue,omitempty"`
	Routes         []nativeRoute `json:"routes,omitempty"`
}

type nativeReceiver struct {
	Name         string        `json:"name"`
	SlackConfigs []nativeSlack `json:"slack_configs,omitempty"`
	EmailConfigs []nativeEmail `json:"email_configs,omitempty"`
}

type nativeSlack struct {
	APIURLFile   string `json:"api_url_file"`
	Channel      string `json:"channel,omitempty"`
	SendResolved bool   `json:"send_resolved"`
}

type nativeEmail struct {
	To               string `json:"to"`
	From             string `json:"from"`
	Smarthost        string `json:"smarthost"`
	AuthUsername     string `json:"auth_username,omitempty"`
	AuthPasswordFile string `json:"auth_password_file,omitempty"`
	RequireTLS       bool   `json:"require_tls"`
	SendResolved     bool   `json:"send_resolved"`
}

func secretFile(r SecretKeyRef) string { return SecretsDir + "/" + r.Name + "/" + r.Key }

// native is the routing as alertmanager.yml: the whole configuration of
// an Alertmanager the stack owns, so the top route is the stack's.
func (am *Alertmanager) native() nativeConfig {
	top := nativeRoute{
		Receiver: am.Route.Receiver, GroupBy: am.Route.GroupBy, GroupWait: am.Route.GroupWait,
		GroupInterval: am.Route.GroupInterval, RepeatInterval: am.Route.RepeatInterval,
	}
	for _, r := range am.Route.Routes {
		var matchers []string
		for _, k := range slices.Sorted(maps.Keys(r.Matchers)) {
			matchers = append(matchers, k+"="+strconv.Quote(r.Matchers[k]))
		}
		top.Routes = append(top.Routes, nativeRoute{Receiver: r.Receiver, Matchers: matchers, Continue: r.Continue, RepeatInterval: r.RepeatInterval})
	}
	cfg := nativeConfig{Route: top}
	for _, r := range am.Receivers {
		nr := nativeReceiver{Name: r.Name}
		for _, s := range r.Slack {
			nr.SlackConfigs = append(nr.SlackConfigs, nativeSlack{APIURLFile: secretFile(s.Webhook), Channel: s.Channel, SendResolved: s.SendResolved})
		}
		for _, e := range r.Email {
			ne := nativeEmail{To: e.To, From: e.From, Smarthost: e.Smarthost, AuthUsername: e.AuthUsername, RequireTLS: e.RequireTLS, SendResolved: e.SendResolved}
			if e.AuthPassword != nil {
				ne.AuthPasswordFile = secretFile(*e.AuthPassword)
			}
			nr.EmailConfigs = append(nr.EmailConfigs, ne)
		}
		cfg.Receivers = append(cfg.Receivers, nr)
	}
	return cfg
}

// secretNames are the Secrets the receivers read, sorted.
func (am *Alertmanager) secretNames() []string {
	set := map[string]bool{}
	for _, r := range am.Receivers {
		for _, s := range r.Slack {
			set[s.Webhook.Name] = true
		}
		for _, e := range r.Email {
			if e.AuthPassword != nil {
				set[e.AuthPassword.Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// AlertmanagerYAML is the routing as an alertmanager.yml file, the format
// `amtool check-config` reads.
func (am *Alertmanager) AlertmanagerYAML() ([]byte, error) {
	if err := am.validate(); err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	if err := am.load(); err != nil {
		return nil, err
	}
	return marshalYAML(am.native())
}

// AlertmanagerError is the routing rejected by Alertmanager's own
// configuration loader: galley's checks let through something Alertmanager
// would refuse at start, and its config reloader would keep the old one.
type AlertmanagerError struct{ Err error }

func (e *AlertmanagerError) Error() string {
	return "alertmanager: Alertmanager's configuration loader rejects the routing: " + e.Err.Error()
}

func (e *AlertmanagerError) Unwrap() error { return e.Err }

// load hands the routing, as alertmanager.yml, to Alertmanager's own
// loader (config.Load, what `amtool check-config` and the server run).
// The AlertmanagerConfig object of the operator path holds the same
// routes and receivers, so this checks it too.
func (am *Alertmanager) load() error {
	b, err := marshalYAML(am.native())
	if err != nil {
		return fmt.Errorf("alertmanager: encoding alertmanager.yml: %w", err)
	}
	if _, err := amconfig.Load(string(b)); err != nil {
		return &AlertmanagerError{Err: err}
	}
	return nil
}
