package alerts

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Alertmanager routes the stack's alerts to receivers.
type Alertmanager struct {
	Receivers []Receiver
	Route     Route
}

// Route is the stack's top route: it takes every alert labelled
// galley_stack=<stack>.
type Route struct {
	// Receiver gets what no sub-route takes.
	Receiver       string
	GroupBy        []string
	GroupWait      string
	GroupInterval  string
	RepeatInterval string
	Routes         []SubRoute
}

// SubRoute sends the alerts whose labels equal Matchers to Receiver.
type SubRoute struct {
	Receiver string
	Matchers map[string]string
	// Continue lets the alerts go on to the next sub-routes too.
	Continue       bool
	RepeatInterval string
}

// Receiver is where alerts go. One without Slack or Email drops alerts.
type Receiver struct {
	Name  string
	Slack []Slack
	Email []Email
}

// Slack posts to an incoming webhook whose URL is in a Secret.
type Slack struct {
	Webhook      SecretKeyRef
	Channel      string
	SendResolved bool
}

// Email sends mail through an SMTP server; the password is in a Secret.
type Email struct {
	To, From     string
	Smarthost    string // host:port
	AuthUsername string
	AuthPassword *SecretKeyRef
	RequireTLS   bool
	SendResolved bool
}

// SecretKeyRef names a key of a Secret in Options.Namespace.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

func (am *Alertmanager) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("alertmanager: "+format, a...)) }
	names := map[string]bool{}
	for _, r := range am.Receivers {
		for _, msg := range validation.IsDNS1123Label(r.Name) {
			bad("receiver %q: %s", r.Name, msg)
		}
		if names[r.Name] {
			bad("receiver %q: defined twice", r.Name)
		}
		names[r.Name] = true
		secret := func(what string, ref SecretKeyRef) {
			for _, msg := range validation.IsDNS1123Subdomain(ref.Name) {
				bad("receiver %s: %s: Secret name %q: %s", r.Name, what, ref.Name, msg)
			}
			for _, msg := range validation.IsConfigMapKey(ref.Key) {
				bad("receiver %s: %s: Secret key %q: %s", r.Name, what, ref.Key, msg)
			}
		}
		for i, s := range r.Slack {
			secret(fmt.Sprintf("slack %d webhook", i), s.Webhook)
		}
		for i, e := range r.Email {
			if e.To == "" || e.From == "" {
				bad("receiver %s: email %d: to and from are required", r.Name, i)
			}
			if host, port, ok := strings.Cut(e.Smarthost, ":"); !ok || host == "" || port == "" {
				bad("receiver %s: email %d: smarthost %q: want host:port", r.Name, i, e.Smarthost)
			}
			if e.AuthPassword != nil {
				if e.AuthUsername == "" {
					bad("receiver %s: email %d: a password needs a user name", r.Name, i)
				}
				secret(fmt.Sprintf("email %d password", i), *e.AuthPassword)
			}
		}
	}
	known := func(what, name string) {
		if !names[name] {
			bad("%s: receiver %q is not defined", what, name)
		}
	}
	known("route", am.Route.Receiver)
	for _, d := range []struct{ what, v string }{
		{"groupWait", am.Route.GroupWait}, {"groupInterval", am.Route.GroupInterval}, {"repeatInterval", am.Route.RepeatInterval},
	} {
		if _, err := model.ParseDuration(d.v); d.v != "" && err != nil {
			bad("route %s: %v", d.what, err)
		}
	}
	for i, r := range am.Route.Routes {
		known(fmt.Sprintf("route %d", i), r.Receiver)
		if len(r.Matchers) == 0 {
			bad("route %d: no matchers: it would take every alert", i)
		}
		for k := range r.Matchers {
			if !labelNameRe.MatchString(k) {
				bad("route %d: matcher %q: not a Prometheus label name", i, k)
			}
		}
	}
	return errors.Join(errs...)
}

// The AlertmanagerConfig (monitoring.coreos.com/v1alpha1) fields galley
// writes.
type amSpec struct {
	Route     amRoute      `json:"route"`
	Receivers []amReceiver `json:"receivers"`
}

type amRoute struct {
	Receiver       string      `json:"receiver"`
	GroupBy        []string    `json:"groupBy,omitempty"`
	GroupWait      string      `json:"groupWait,omitempty"`
	GroupInterval  string      `json:"groupInterval,omitempty"`
	RepeatInterval string      `json:"repeatInterval,omitempty"`
	Matchers       []amMatcher `json:"matchers,omitempty"`
	Continue       bool        `json:"continue,omitempty"`
	Routes         []amRoute   `json:"routes,omitempty"`
}

type amMatcher struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	MatchType string `json:"matchType"`
}

type amReceiver struct {
	Name         string          `json:"name"`
	SlackConfigs []amSlackConfig `json:"slackConfigs,omitempty"`
	EmailConfigs []amEmailConfig `json:"emailConfigs,omitempty"`
}

type amSlackConfig struct {
	APIURL       SecretKeyRef `json:"apiURL"`
	Channel      string       `json:"channel,omitempty"`
	SendResolved bool         `json:"sendResolved"`
}

type amEmailConfig struct {
	To           string        `json:"to"`
	From         string        `json:"from"`
	Smarthost    string        `json:"smarthost"`
	AuthUsername string        `json:"authUsername,omitempty"`
	AuthPassword *SecretKeyRef `json:"authPassword,omitempty"`
	RequireTLS   bool          `json:"requireTLS"`
	SendResolved bool          `json:"sendResolved"`
}

func (o *Options) alertmanagerConfig(am *Alertmanager) object {
	r := am.Route
	route := amRoute{
		Receiver:       r.Receiver,
		GroupBy:        r.GroupBy,
		GroupWait:      r.GroupWait,
		GroupInterval:  r.GroupInterval,
		RepeatInterval: r.RepeatInterval,
		Matchers:       []amMatcher{{Name: StackLabel, Value: o.StackName, MatchType: "="}},
	}
	for _, sr := range r.Routes {
		sub := amRoute{Receiver: sr.Receiver, Continue: sr.Continue, RepeatInterval: sr.RepeatInterval}
		for _, k := range slices.Sorted(maps.Keys(sr.Matchers)) {
			sub.Matchers = append(sub.Matchers, amMatcher{Name: k, Value: sr.Matchers[k], MatchType: "="})
		}
		route.Routes = append(route.Routes, sub)
	}
	receivers := slices.Clone(am.Receivers)
	slices.SortFunc(receivers, func(a, b Receiver) int { return strings.Compare(a.Name, b.Name) })
	spec := amSpec{Route: route, Receivers: []amReceiver{}}
	for _, rc := range receivers {
		out := amReceiver{Name: rc.Name}
		for _, s := range rc.Slack {
			out.SlackConfigs = append(out.SlackConfigs, amSlackConfig{APIURL: s.Webhook, Channel: s.Channel, SendResolved: s.SendResolved})
		}
		for _, e := range rc.Email {
			out.EmailConfigs = append(out.EmailConfigs, amEmailConfig(e))
		}
		spec.Receivers = append(spec.Receivers, out)
	}
	return object{
		APIVersion: "monitoring.coreos.com/v1alpha1",
		Kind:       "AlertmanagerConfig",
		Metadata:   o.metadata(o.StackName, nil),
		Spec:       spec,
	}
}
