// Package alerts generates the monitoring/ directory of a bundle: alerting
// rules as prometheus-operator PrometheusRule objects (galley's built-in
// packs and the stack's own rules), alert routing as an AlertmanagerConfig,
// and one Grafana dashboard per app as a ConfigMap for Grafana's dashboard
// sidecar.
//
// Layout, one object per file:
//
//	monitoring/prometheusrule-<stack>-infrastructure.yaml  infrastructure pack
//	monitoring/prometheusrule-<stack>-data-journey.yaml    data journey pack
//	monitoring/prometheusrule-<stack>-custom.yaml          the stack's rules
//	monitoring/alertmanagerconfig-<stack>.yaml             routing
//	monitoring/configmap-<stack>-dashboard-<app>.yaml      dashboards
//
// Choices:
//   - Every alert carries galley_stack=<stack> and galley_pack=<pack>, and
//     the AlertmanagerConfig's route matches galley_stack, so the stack's
//     routing takes the stack's alerts and nothing else. The operator's
//     default matcher strategy (OnNamespace) would also require
//     namespace=<monitoring namespace>, which the stack's alerts do not
//     carry: Alertmanager must run with alertmanagerConfigMatcherStrategy
//     None (docs/monitoring.md).
//   - Every PromQL expression is parsed before it is written, with the
//     options promtool uses by default, and every template is parsed as
//     Prometheus parses it.
//   - Credentials are only ever Secret key references.
//   - The output is deterministic: sorted maps, fixed order everywhere,
//     dashboards as indented JSON.
package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/galley-dev/galley/bundles"
)

// Dir is the bundle directory the files go to.
const Dir = bundles.MonitoringDir

// Label names galley sets on every alert.
const (
	StackLabel    = "galley_stack"
	PackLabel     = "galley_pack"
	SeverityLabel = "severity"
)

// Pack names, the values of PackLabel.
const (
	PackInfrastructure = "infrastructure"
	PackDataJourney    = "data-journey"
	PackSecurity       = "security"
	PackCustom         = "custom"
)

// Options describe the monitoring of one stack.
type Options struct {
	StackName string
	// Namespace receives every object; Secrets that receivers name must
	// exist in it.
	Namespace string
	// Labels go on every object's metadata, for the operator's selectors.
	Labels map[string]string
	// AlertLabels go on every alert; a rule's own labels win.
	AlertLabels map[string]string
	// Ingress is the ingress controller in front of the apps, a source
	// of kind KindIngress ("" for none): the golden signals of HTTP
	// traffic come from it.
	Ingress string
	// Provided is what the stack's sources expose: a rule reading a
	// metric outside it is an error. Nil checks nothing.
	Provided *Provided
	// RunbookBase prefixes the lower-cased alert name to make the
	// runbook_url of every built-in alert that has none.
	RunbookBase string

	Infrastructure *Infrastructure
	DataJourney    *DataJourney
	Security       *Security
	// Custom are the stack's own rule groups; each rule's labels must set
	// SeverityLabel.
	Custom []Group
	// Tests are unit tests of the custom rules, by alert name: Generate
	// runs them and fails with TestFailures when one fails.
	Tests        map[string][]TestGroup
	Alertmanager *Alertmanager
	Dashboards   []App
	// Chart leaves out the prometheus-operator objects: the rules and
	// the routing go to the plain prometheus chart's values instead
	// (ChartValues).
	Chart bool
	// PassedTests, when set, remembers runs of the built-in pack tests that
	// passed, so that a rebuild with the same rules and tests does not run
	// Prometheus's engine again: the tests are a function of the rules and
	// the tests alone, and cost about a second of CPU per build.
	PassedTests PassedTests
}

// PassedTests is a store of test runs that passed, by a key that digests
// the rules and the tests (compiler: a file per key in galley's cache).
type PassedTests interface {
	Passed(key string) bool
	RecordPass(key string)
}

// Rule is an alerting rule in the Prometheus rules format, which the
// PrometheusRule CRD embeds unchanged.
type Rule struct {
	Alert         string            `json:"alert"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Group is a rule group: its rules are evaluated together, in order.
type Group struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Generate returns the files of monitoring/, sorted by path. The same
// Options give the same bytes.
func Generate(o Options) ([]bundles.File, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	var files []bundles.File
	add := func(kind, name string, v any) error {
		b, err := marshalYAML(v)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", kind, name, err)
		}
		header := "# Generated by galley for stack " + o.StackName + ". Do not edit.\n"
		files = append(files, bundles.File{
			Path: Dir + "/" + strings.ToLower(kind) + "-" + name + ".yaml",
			Data: append([]byte(header), b...),
		})
		return nil
	}

	packs, err := o.Groups()
	if err != nil {
		return nil, err
	}
	if !o.Chart {
		for _, pg := range packs {
			name := o.StackName + "-" + pg.Pack
			if err := add("PrometheusRule", name, o.prometheusRule(name, pg.Groups)); err != nil {
				return nil, err
			}
		}
	}
	if am := o.Alertmanager; am != nil && !o.Chart {
		if err := add("AlertmanagerConfig", o.StackName, o.alertmanagerConfig(am)); err != nil {
			return nil, err
		}
	}
	for _, app := range o.Dashboards {
		cm, err := o.dashboardConfigMap(app)
		if err != nil {
			return nil, fmt.Errorf("dashboard of app %s: %w", app.Name, err)
		}
		if err := add("ConfigMap", cm.Metadata.Name, cm); err != nil {
			return nil, err
		}
	}
	if len(o.Dashboards) > 0 {
		panels, err := o.overviewPanels()
		if err != nil {
			return nil, fmt.Errorf("overview dashboard: %w", err)
		}
		if len(panels) > 0 {
			cm, err := o.dashboardObject(OverviewName, "The platform of stack "+o.StackName+" at a glance: each app's golden signals and each pipeline's last success and duration, generated by galley.", panels)
			if err != nil {
				return nil, fmt.Errorf("overview dashboard: %w", err)
			}
			if err := add("ConfigMap", cm.Metadata.Name, cm); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(files, func(a, b bundles.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// PackGroups are the rule groups of one pack.
type PackGroups struct {
	Pack   string
	Groups []Group
}

// Groups returns the finished, checked rule groups of every pack that has
// rules, in pack order, after running the custom rules' tests.
func (o Options) Groups() ([]PackGroups, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	packs := []struct {
		name   string
		groups func() ([]Group, error)
	}{
		{PackInfrastructure, o.infrastructureGroups},
		{PackDataJourney, o.dataJourneyGroups},
		{PackSecurity, o.securityGroups},
		{PackCustom, func() ([]Group, error) { return o.Custom, nil }},
	}
	var out []PackGroups
	for _, p := range packs {
		groups, err := p.groups()
		if err != nil {
			return nil, fmt.Errorf("%s pack: %w", p.name, err)
		}
		groups = o.finish(p.name, groups)
		if len(groups) == 0 {
			continue
		}
		if err := checkGroups(groups); err != nil {
			return nil, fmt.Errorf("%s rules: %w", p.name, err)
		}
		if err := o.checkProvided(p.name, groups); err != nil {
			return nil, fmt.Errorf("%s rules: %w", p.name, err)
		}
		if p.name == PackCustom && len(o.Tests) > 0 {
			if _, err := RunTests(groups, o.Tests); err != nil {
				return nil, testFailures(err)
			}
		}
		if p.name != PackCustom {
			if err := o.runPackTests(groups); err != nil {
				return nil, err
			}
		}
		out = append(out, PackGroups{p.name, groups})
	}
	return out, nil
}

// finish drops empty groups and sets the labels every alert carries.
func (o *Options) finish(pack string, groups []Group) []Group {
	var out []Group
	for _, g := range groups {
		if len(g.Rules) == 0 {
			continue
		}
		g.Rules = slices.Clone(g.Rules)
		for i, r := range g.Rules {
			labels := maps.Clone(o.AlertLabels)
			if labels == nil {
				labels = map[string]string{}
			}
			maps.Copy(labels, r.Labels)
			labels[StackLabel] = o.StackName
			labels[PackLabel] = pack
			g.Rules[i].Labels = labels
			if pack != PackCustom && o.RunbookBase != "" && r.Annotations["runbook_url"] == "" {
				a := maps.Clone(r.Annotations)
				a["runbook_url"] = o.RunbookBase + strings.ToLower(r.Alert)
				g.Rules[i].Annotations = a
			}
		}
		out = append(out, g)
	}
	return out
}

// RulesFile is the Prometheus rules file of some groups, the format
// `promtool check rules` and Prometheus's rule_files read.
func RulesFile(groups []Group) ([]byte, error) {
	return marshalYAML(ruleSpec{Groups: groups})
}

// marshalYAML writes v as YAML with sorted keys, like the rest of the
// bundle, but never folds long lines and writes multi-line strings
// (expressions, dashboards) as literal blocks, so they read as written.
func marshalYAML(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var (
	labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	severities  = []string{"critical", "warning", "info"}
)

func (o *Options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	dnsLabel := func(what, v string) {
		for _, msg := range validation.IsDNS1123Label(v) {
			bad("%s %q: %s", what, v, msg)
		}
	}
	dnsLabel("stack name", o.StackName)
	dnsLabel("namespace", o.Namespace)
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("object label %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(o.Labels[k]) {
			bad("object label %s=%q: %s", k, o.Labels[k], msg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.AlertLabels)) {
		if !labelNameRe.MatchString(k) {
			bad("alert label %q: not a Prometheus label name", k)
		}
		if k == StackLabel || k == PackLabel || k == SeverityLabel {
			bad("alert label %q: galley sets it", k)
		}
	}
	if _, ok := ingresses[o.Ingress]; o.Ingress != "" && !ok {
		bad("ingress %q: want one of %s", o.Ingress, strings.Join(SourceNames(KindIngress), ", "))
	}
	seenGroup := map[string]bool{}
	for _, g := range o.Custom {
		if g.Name == "" {
			bad("custom rule group without a name")
		}
		if seenGroup[g.Name] {
			bad("custom rule group %q: defined twice", g.Name)
		}
		seenGroup[g.Name] = true
		for _, r := range g.Rules {
			if !slices.Contains(severities, r.Labels[SeverityLabel]) {
				bad("custom rule %s: severity %q: want one of %s", r.Alert, r.Labels[SeverityLabel], strings.Join(severities, ", "))
			}
		}
	}
	if am := o.Alertmanager; am != nil {
		if err := am.validate(); err != nil {
			errs = append(errs, err)
		} else if err := am.load(); err != nil {
			errs = append(errs, err)
		}
	}
	seenApp := map[string]bool{}
	for _, a := range o.Dashboards {
		dnsLabel("dashboard app", a.Name)
		dnsLabel("dashboard app namespace", a.Namespace)
		if seenApp[a.Name] {
			bad("dashboard app %q: defined twice", a.Name)
		}
		if a.Name == OverviewName {
			bad("dashboard app %q: the overview dashboard has that name; rename the app", a.Name)
		}
		seenApp[a.Name] = true
	}
	return errors.Join(errs...)
}

// checkGroups parses every expression and template, as promtool would.
func checkGroups(groups []Group) error {
	var errs []error
	for _, g := range groups {
		for _, r := range g.Rules {
			what := fmt.Sprintf("group %s: alert %s", g.Name, r.Alert)
			if !labelNameRe.MatchString(r.Alert) {
				errs = append(errs, fmt.Errorf("%s: the alert name must be a Prometheus label value of letters, digits and _", what))
			}
			if err := ParseExpr(r.Expr); err != nil {
				errs = append(errs, fmt.Errorf("%s: invalid PromQL %q: %w", what, r.Expr, err))
			}
			for _, d := range []struct{ field, v string }{{"for", r.For}, {"keep_firing_for", r.KeepFiringFor}} {
				if d.v == "" {
					continue
				}
				if _, err := model.ParseDuration(d.v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w", what, d.field, err))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
				if !labelNameRe.MatchString(k) {
					errs = append(errs, fmt.Errorf("%s: label %q: not a Prometheus label name", what, k))
				}
				if err := CheckTemplate(r.Alert, r.Labels[k]); err != nil {
					errs = append(errs, fmt.Errorf("%s: label %s: %w", what, k, err))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(r.Annotations)) {
				if !labelNameRe.MatchString(k) {
					errs = append(errs, fmt.Errorf("%s: annotation %q: not a Prometheus label name", what, k))
				}
				if err := CheckTemplate(r.Alert, r.Annotations[k]); err != nil {
					errs = append(errs, fmt.Errorf("%s: annotation %s: %w", what, k, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// The subset of the prometheus-operator and Kubernetes types galley
// writes. Maps marshal with sorted keys, so the YAML is stable.
type object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metadata          `json:"metadata"`
	Spec       any               `json:"spec,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
}

type metadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

func (o *Options) metadata(name string, extra map[string]string) metadata {
	labels := map[string]string{"app.kubernetes.io/part-of": o.StackName, "app.kubernetes.io/managed-by": "galley"}
	maps.Copy(labels, o.Labels)
	maps.Copy(labels, extra)
	return metadata{Name: name, Namespace: o.Namespace, Labels: labels}
}

type ruleSpec struct {
	Groups []Group `json:"groups"`
}

func (o *Options) prometheusRule(name string, groups []Group) object {
	return object{
		APIVersion: "monitoring.coreos.com/v1",
		Kind:       "PrometheusRule",
		Metadata:   o.metadata(name, nil),
		Spec:       ruleSpec{Groups: groups},
	}
}

// indentJSON is json.MarshalIndent without HTML escaping, so that PromQL's
// < and > stay readable in dashboards.
func indentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// UnprovidedError is a rule that reads metrics no source of the stack
// provides: it would never fire, and nobody would know.
type UnprovidedError struct {
	Pack, Group, Alert string
	Missing            []string
}

func (e *UnprovidedError) Error() string {
	return fmt.Sprintf("group %s: alert %s reads %s, which no source of the stack provides: %s",
		e.Group, e.Alert, strings.Join(e.Missing, ", "), MissingHint(e.Missing))
}

// checkProvided reports every rule of pack that reads a metric no source
// provides, as *UnprovidedError values.
func (o *Options) checkProvided(pack string, groups []Group) error {
	if o.Provided == nil {
		return nil
	}
	var errs []error
	for _, g := range groups {
		for _, r := range g.Rules {
			missing, err := o.Provided.Missing(r.Expr)
			if err != nil {
				continue // checkGroups reported it
			}
			if len(missing) > 0 {
				errs = append(errs, &UnprovidedError{Pack: pack, Group: g.Name, Alert: r.Alert, Missing: missing})
			}
		}
	}
	return errors.Join(errs...)
}

// TestFailures are the failed expectations of the stack's rule tests.
type TestFailures []*TestFailure

func (t TestFailures) Error() string {
	msgs := make([]string, len(t))
	for i, f := range t {
		msgs[i] = f.Error()
	}
	return "rule tests failed:\n" + strings.Join(msgs, "\n")
}

func testFailures(err error) error {
	var out TestFailures
	var walk func(error)
	walk = func(e error) {
		// Not errors.As: the walk collects every failure of the joined tree,
		// errors.As would stop at the first.
		if f, ok := e.(*TestFailure); ok { //nolint:errorlint // see above
			out = append(out, f)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if len(out) == 0 {
		return err
	}
	return out
}
