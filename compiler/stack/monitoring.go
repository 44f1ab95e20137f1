package stack

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/galley-dev/galley/compiler/alerts"
)

// Monitoring is what the stack watches and who hears about it: galley's
// alert packs, the stack's own rules, alert routing and dashboards.
type Monitoring struct {
	Namespace    string            `json:"namespace"`
	Labels       map[string]string `json:"labels"`
	AlertLabels  map[string]string `json:"alertLabels"`
	AppName      string            `json:"appName"`
	SyncWave     *int              `json:"syncWave,omitempty"`
	Sources      Sources           `json:"sources"`
	RunbookBase  string            `json:"runbookBase"`
	Prometheus   *PrometheusChart  `json:"prometheus,omitempty"`
	Packs        Packs             `json:"packs"`
	Rules        []Rule            `json:"rules"`
	Alertmanager *Alertmanager     `json:"alertmanager,omitempty"`
	Dashboards   Dashboards        `json:"dashboards"`
}

// PrometheusChart names the app running the plain prometheus chart.
type PrometheusChart struct {
	App string `json:"app"`
}

// Sources say what exposes metrics in the stack and its cluster.
type Sources struct {
	Apps    map[string]string `json:"apps"`
	Ingress string            `json:"ingress,omitempty"`
	Cluster []string          `json:"cluster"`
	Metrics []string          `json:"metrics"`
}

// Packs are the built-in alert packs; nil means off.
type Packs struct {
	Infrastructure *InfrastructurePack `json:"infrastructure,omitempty"`
	DataJourney    *DataJourneyPack    `json:"dataJourney,omitempty"`
	Security       *SecurityPack       `json:"security,omitempty"`
}

// SecurityPack watches denied requests.
type SecurityPack struct {
	Apps            []string `json:"apps"`
	Namespaces      []string `json:"namespaces"`
	APIUnauthorized Check    `json:"apiUnauthorized"`
	APIForbidden    Check    `json:"apiForbidden"`
	IngressDenied   Check    `json:"ingressDenied"`
}

// Check tunes one alert of a pack. Ratio is the threshold of the alerts
// that have one.
type Check struct {
	Enabled  bool    `json:"enabled"`
	For      string  `json:"for"`
	Severity string  `json:"severity"`
	Ratio    float64 `json:"ratio,omitempty"`
}

// InfrastructurePack watches the pods and volumes of app namespaces.
type InfrastructurePack struct {
	Apps         []string `json:"apps"`
	Namespaces   []string `json:"namespaces"`
	CrashLooping Check    `json:"crashLooping"`
	NotReady     Check    `json:"notReady"`
	ErrorRate    Check    `json:"errorRate"`
	Latency      Check    `json:"latency"`
	CPU          Check    `json:"cpu"`
	Memory       Check    `json:"memory"`
	Volume       Check    `json:"volume"`
}

// DataJourneyPack watches pipelines and the data they produce.
type DataJourneyPack struct {
	Airflow   *AirflowPack            `json:"airflow,omitempty"`
	Airbyte   *AirbytePack            `json:"airbyte,omitempty"`
	Streaming *StreamingPack          `json:"streaming,omitempty"`
	Jobs      *JobsPack               `json:"jobs,omitempty"`
	Pipelines map[string]Pipeline     `json:"pipelines"`
	Quality   map[string]QualityCheck `json:"quality"`
}

// AirflowPack alerts on failed DAG runs.
type AirflowPack struct {
	App          string `json:"app,omitempty"`
	DAGRunFailed Check  `json:"dagRunFailed"`
	Window       string `json:"window"`
}

// AirbytePack alerts on failed syncs.
type AirbytePack struct {
	App        string `json:"app,omitempty"`
	SyncFailed Check  `json:"syncFailed"`
	Window     string `json:"window"`
}

// StreamingPack alerts on Kafka consumer groups.
type StreamingPack struct {
	ConsumerGroups []string `json:"consumerGroups"`
	Lag            Check    `json:"lag"`
	Stalled        Check    `json:"stalled"`
	Window         string   `json:"window"`
}

// JobsPack alerts on failed Kubernetes Jobs.
type JobsPack struct {
	Apps       []string `json:"apps"`
	Namespaces []string `json:"namespaces"`
	Failed     Check    `json:"failed"`
}

// Pipeline is one pipeline with an SLA and/or a freshness window; exactly
// one of Airflow, Job, CronJob and LastSuccess is set (Load checks).
type Pipeline struct {
	Airflow     *AirflowDAG `json:"airflow,omitempty"`
	Job         string      `json:"job,omitempty"`
	CronJob     *CronJobRef `json:"cronJob,omitempty"`
	LastSuccess *Selector   `json:"lastSuccess,omitempty"`
	SLA         string      `json:"sla,omitempty"`
	Freshness   string      `json:"freshness,omitempty"`
	Severity    string      `json:"severity"`
	Runbook     string      `json:"runbook,omitempty"`
}

// AirflowDAG is a DAG of the stack's Airflow.
type AirflowDAG struct {
	DAG string `json:"dag"`
}

// CronJobRef names a CronJob.
type CronJobRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Selector picks the series of one metric by label values.
type Selector struct {
	Metric   string            `json:"metric"`
	Matchers map[string]string `json:"matchers"`
}

// QualityCheck fires while a metric is above or below a threshold;
// exactly one of Above and Below is set (Load checks).
type QualityCheck struct {
	Selector
	Above    *float64 `json:"above,omitempty"`
	Below    *float64 `json:"below,omitempty"`
	For      string   `json:"for"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary,omitempty"`
	Runbook  string   `json:"runbook,omitempty"`
}

// Rule is one of the stack's own alerting rules.
type Rule struct {
	Alert         string            `json:"alert"`
	Expr          string            `json:"expr"`
	For           string            `json:"for"`
	KeepFiringFor string            `json:"keepFiringFor,omitempty"`
	Severity      string            `json:"severity"`
	Group         string            `json:"group"`
	Labels        map[string]string `json:"labels"`
	Annotations   map[string]string `json:"annotations"`
	Tests         []RuleTest        `json:"tests"`
}

// RuleTest is a unit test of a rule: input series and expected alerts.
type RuleTest struct {
	Name        string `json:"name,omitempty"`
	Interval    string `json:"interval"`
	InputSeries []struct {
		Series string `json:"series"`
		Values string `json:"values"`
	} `json:"inputSeries"`
	Expect []struct {
		EvalTime string `json:"evalTime"`
		Alerts   []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"alerts"`
	} `json:"expect"`
}

// Alertmanager routes the stack's alerts.
type Alertmanager struct {
	Receivers map[string]Receiver `json:"receivers"`
	Route     Route               `json:"route"`
}

// Route is the top route of the stack's alerts.
type Route struct {
	Receiver       string     `json:"receiver"`
	GroupBy        []string   `json:"groupBy"`
	GroupWait      string     `json:"groupWait"`
	GroupInterval  string     `json:"groupInterval"`
	RepeatInterval string     `json:"repeatInterval"`
	Routes         []SubRoute `json:"routes"`
}

// SubRoute sends the alerts whose labels equal Matchers to Receiver.
type SubRoute struct {
	Receiver       string            `json:"receiver"`
	Matchers       map[string]string `json:"matchers"`
	Continue       bool              `json:"continue"`
	RepeatInterval string            `json:"repeatInterval,omitempty"`
}

// Receiver is where alerts go.
type Receiver struct {
	Slack []Slack `json:"slack"`
	Email []Email `json:"email"`
}

// Slack posts to an incoming webhook whose URL is in a Secret.
type Slack struct {
	Webhook      SecretKeyRef `json:"webhook"`
	Channel      string       `json:"channel,omitempty"`
	SendResolved bool         `json:"sendResolved"`
}

// Email sends mail through an SMTP server.
type Email struct {
	To           string        `json:"to"`
	From         string        `json:"from"`
	Smarthost    string        `json:"smarthost"`
	AuthUsername string        `json:"authUsername,omitempty"`
	AuthPassword *SecretKeyRef `json:"authPassword,omitempty"`
	RequireTLS   bool          `json:"requireTLS"`
	SendResolved bool          `json:"sendResolved"`
}

// SecretKeyRef names a key of a Secret in the monitoring namespace.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Dashboards says which apps get a Grafana dashboard.
type Dashboards struct {
	Enabled bool     `json:"enabled"`
	Apps    []string `json:"apps"`
}

// reservedAlertLabels are set by galley on every alert.
var reservedAlertLabels = map[string]string{
	"severity":     "the severity field",
	"galley_stack": "galley, to the stack name",
	"galley_pack":  "galley, to the pack name",
}

// validateDeep reports every error below v, the user's monitoring block.
// CUE stops at the first errors in a struct, and the block nests deeper
// than validate descends, so each struct field and list element is
// validated on its own too (Errors.sort drops the repeats). A field the
// schema does not allow is only reported on a struct with no other error,
// so fields are checked against the schema, which has none.
func validateDeep(v cue.Value) Errors {
	return validateAgainst(v, monitoringSchema())
}

func validateAgainst(v, schema cue.Value) Errors {
	errs := errsOf(v)
	if len(errs) == 0 {
		return nil
	}
	// A struct or list in error has kind bottom: try both.
	if it, err := v.List(); err == nil {
		elem := schema.LookupPath(cue.MakePath(cue.AnyIndex))
		for it.Next() {
			errs = append(errs, validateAgainst(it.Value(), elem)...)
		}
		return errs
	}
	it, err := v.Fields(cue.Optional(false))
	if err != nil {
		return errs
	}
	for it.Next() {
		sel := it.Selector()
		var child cue.Value
		switch {
		case sel.Type() == cue.IndexLabel:
			child = schema.LookupPath(cue.MakePath(cue.AnyIndex))
		case schema.Exists() && !schema.Allows(sel):
			errs = append(errs, &Error{Pos: userPos(it.Value()), Path: it.Value().Path().String(), Msg: "field not allowed"})
			continue
		default:
			// An optional selector also finds optional fields and
			// applies pattern constraints.
			child = schema.LookupPath(cue.MakePath(sel.Optional()))
		}
		errs = append(errs, validateAgainst(it.Value(), child)...)
	}
	return errs
}

// monitoringSchema is #Monitoring from the embedded schema, on its own.
var monitoringSchema = sync.OnceValue(func() cue.Value {
	insts := load.Instances([]string{"."}, &load.Config{
		Dir:     "/galley-schema",
		Overlay: schemaFiles("/galley-schema"),
		Package: "v1alpha1",
	})
	if len(insts) == 0 || insts[0].Err != nil {
		return cue.Value{}
	}
	return cuecontext.New().BuildInstance(insts[0]).LookupPath(cue.ParsePath("#Monitoring"))
})

// checkMonitoring finds what the schema cannot see in the monitoring
// block: references to apps and receivers, PromQL and template syntax, and
// choices that exclude each other.
func (s *Stack) checkMonitoring() Errors {
	m := s.Monitoring
	if m == nil {
		return nil
	}
	c := &monitoringChecker{s: s}
	if s.App(m.AppName) != nil || s.Job(m.AppName) != nil {
		c.errAt("appName", "the Argo CD Application for monitoring/ would be named like the app or job %s; set monitoring.appName to another name", m.AppName)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		for _, msg := range validation.IsQualifiedName(k) {
			c.errAt("labels", "label %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(m.Labels[k]) {
			c.errAt("labels."+k, "label %s=%q: %s", k, m.Labels[k], msg)
		}
	}
	c.labels("alertLabels", m.AlertLabels)
	if p := m.Packs.Infrastructure; p != nil {
		c.apps("packs.infrastructure.apps", p.Apps)
	}
	if p := m.Packs.DataJourney; p != nil {
		if p.Airflow != nil && p.Airflow.App != "" {
			c.app("packs.dataJourney.airflow.app", p.Airflow.App)
		}
		if p.Jobs != nil {
			c.apps("packs.dataJourney.jobs.apps", p.Jobs.Apps)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Pipelines)) {
			c.pipeline(name, p.Pipelines[name])
		}
		for _, name := range slices.Sorted(maps.Keys(p.Quality)) {
			q := p.Quality[name]
			if (q.Above == nil) == (q.Below == nil) {
				c.errAt("packs.dataJourney.quality."+name, "quality check %s: set exactly one of above and below", name)
			}
		}
	}
	if m.Prometheus != nil {
		c.app("prometheus.app", m.Prometheus.App)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Sources.Apps)) {
		c.app("sources.apps."+name, name)
	}
	if p := m.Packs.DataJourney; p != nil && p.Airbyte != nil && p.Airbyte.App != "" {
		c.app("packs.dataJourney.airbyte.app", p.Airbyte.App)
	}
	if p := m.Packs.Security; p != nil {
		c.apps("packs.security.apps", p.Apps)
	}
	provided, err := alerts.NewProvided(m.SourceNames(), m.Sources.Metrics)
	if err != nil {
		c.errAt("sources", "%v", err)
	}
	for i, r := range m.Rules {
		c.rule(i, r)
		if provided != nil {
			c.provided(fmt.Sprintf("rules[%d].expr", i), r.Expr, provided)
		}
	}
	if am := m.Alertmanager; am != nil {
		c.alertmanager(am)
	}
	if m.Dashboards.Enabled {
		c.apps("dashboards.apps", m.Dashboards.Apps)
	}
	return c.errs
}

// SourceNames are the metric sources of the stack: the cluster's
// exporters, the products of its apps (an app the airflow or airbyte
// pack names runs that product), and its ingress.
func (m *Monitoring) SourceNames() []string {
	set := map[string]bool{}
	for _, c := range m.Sources.Cluster {
		set[c] = true
	}
	for _, p := range m.Sources.Apps {
		set[p] = true
	}
	if m.Sources.Ingress != "" {
		set[m.Sources.Ingress] = true
	}
	if p := m.Packs.DataJourney; p != nil {
		if p.Airflow != nil && p.Airflow.App != "" {
			set["airflow"] = true
		}
		if p.Airbyte != nil && p.Airbyte.App != "" {
			set["airbyte"] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// provided reports a rule reading metrics no source of the stack
// provides, at the first such metric in the expression.
func (c *monitoringChecker) provided(field, expr string, p *alerts.Provided) {
	missing, err := p.Missing(expr)
	if err != nil || len(missing) == 0 {
		return // a syntax error is reported by promQL
	}
	pos := token.NoPos
	if i := strings.Index(expr, missing[0]); i >= 0 {
		pos = stringPos(c.value(field), expr, i)
	}
	if !pos.IsValid() {
		pos = c.pos(field)
	}
	c.errs = append(c.errs, &Error{
		Pos:  pos,
		Path: "stack.monitoring." + field,
		Msg:  fmt.Sprintf("the rule reads %s, which no source of the stack provides: %s", strings.Join(missing, ", "), alerts.MissingHint(missing)),
	})
}

// MonitoringError is a problem found after Load at a field below
// stack.monitoring ("" for the block itself), placed in the user's CUE.
func (s *Stack) MonitoringError(field, format string, args ...any) *Error {
	c := &monitoringChecker{s: s}
	path := "stack.monitoring"
	if field != "" {
		path += "." + field
	}
	return &Error{Pos: c.pos(field), Path: path, Msg: fmt.Sprintf(format, args...)}
}

type monitoringChecker struct {
	s    *Stack
	errs Errors
}

// errAt reports a problem at a field below stack.monitoring.
func (c *monitoringChecker) errAt(field, format string, args ...any) {
	c.errs = append(c.errs, &Error{
		Pos:  c.pos(field),
		Path: "stack.monitoring." + field,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// pos is the user's position of a field below stack.monitoring, or of the
// closest enclosing field that has one.
func (c *monitoringChecker) pos(field string) token.Pos {
	sels := monitoringPath(field)
	for n := len(sels); n > 0; n-- {
		if p := userPos(c.s.value.LookupPath(cue.MakePath(sels[:n]...))); p.IsValid() {
			return p
		}
	}
	return token.NoPos
}

func (c *monitoringChecker) value(field string) cue.Value {
	return c.s.value.LookupPath(cue.MakePath(monitoringPath(field)...))
}

// monitoringPath turns a field below stack.monitoring, written as in
// messages ("packs.dataJourney.quality.warehouse-tests", "rules[0].expr"),
// into selectors: names need no quoting.
func monitoringPath(field string) []cue.Selector {
	sels := []cue.Selector{cue.Str("monitoring")}
	if field == "" {
		return sels
	}
	for _, part := range strings.Split(field, ".") {
		name, rest, _ := strings.Cut(part, "[")
		sels = append(sels, cue.Str(name))
		for rest != "" {
			var idx string
			idx, rest, _ = strings.Cut(rest, "]")
			if i, err := strconv.Atoi(idx); err == nil {
				sels = append(sels, cue.Index(i))
			}
			rest = strings.TrimPrefix(rest, "[")
		}
	}
	return sels
}

func (c *monitoringChecker) app(field, name string) {
	if c.s.App(name) == nil {
		c.errAt(field, "%q is not an app of this stack (apps: %s)", name, strings.Join(c.s.appNames(), ", "))
	}
}

func (c *monitoringChecker) apps(field string, names []string) {
	for i, n := range names {
		c.app(fmt.Sprintf("%s[%d]", field, i), n)
	}
}

func (c *monitoringChecker) labels(field string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if why, ok := reservedAlertLabels[k]; ok {
			c.errAt(field+"."+k, "label %s is set by %s", k, why)
		}
	}
}

func (c *monitoringChecker) pipeline(name string, p Pipeline) {
	field := "packs.dataJourney.pipelines." + name
	sources := 0
	for _, set := range []bool{p.Airflow != nil, p.Job != "", p.CronJob != nil, p.LastSuccess != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		c.errAt(field, "pipeline %s: set exactly one of airflow, job, cronJob and lastSuccess", name)
	}
	if p.Job != "" {
		switch j := c.s.Job(p.Job); {
		case j == nil && len(c.s.Jobs) == 0:
			c.errAt(field+".job", "pipeline %s: %q is not a job of this stack, which has none", name, p.Job)
		case j == nil:
			c.errAt(field+".job", "pipeline %s: %q is not a job of this stack (jobs: %s)", name, p.Job, strings.Join(c.s.jobNames(), ", "))
		case j.Schedule == "":
			c.errAt(field+".job", "pipeline %s: job %s has no schedule; a pipeline watches a CronJob", name, p.Job)
		}
	}
	if p.SLA == "" && p.Freshness == "" {
		c.errAt(field, "pipeline %s: set sla, freshness or both", name)
	}
	if p.SLA != "" && p.LastSuccess != nil {
		c.errAt(field+".sla", "pipeline %s: a lastSuccess metric tells when the data was refreshed, not how long a run takes; sla needs airflow, job or cronJob", name)
	}
	for _, f := range []struct{ name, v string }{{"sla", p.SLA}, {"freshness", p.Freshness}} {
		if d, err := model.ParseDuration(f.v); f.v != "" && (err != nil || d == 0) {
			c.errAt(field+"."+f.name, "pipeline %s: %s must be longer than zero", name, f.name)
		}
	}
}

func (c *monitoringChecker) rule(i int, r Rule) {
	field := fmt.Sprintf("rules[%d]", i)
	c.promQL(field+".expr", r.Expr)
	c.labels(field+".labels", r.Labels)
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		c.template(field+".labels."+k, r.Alert, r.Labels[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Annotations)) {
		c.template(field+".annotations."+k, r.Alert, r.Annotations[k])
	}
}

// promQL parses expr as Prometheus does and reports a syntax error at the
// exact place in the CUE string when it can find it.
func (c *monitoringChecker) promQL(field, expr string) {
	err := alerts.ParseExpr(expr)
	if err == nil {
		return
	}
	var ee *alerts.ExprError
	if !errors.As(err, &ee) {
		c.errAt(field, "invalid PromQL: %v", err)
		return
	}
	pos := stringPos(c.value(field), expr, ee.Offset)
	if !pos.IsValid() {
		pos = c.pos(field)
	}
	c.errs = append(c.errs, &Error{
		Pos:  pos,
		Path: "stack.monitoring." + field,
		Msg:  "invalid PromQL: " + ee.Msg,
	})
}

// stringPos finds byte off of the string s in the CUE source of v, which
// must be written as a string literal whose value is s: "...", """...""",
// raw (#"..."#) or not, with escapes. Anything else (interpolation, a
// reference, a value from another file) gives NoPos.
func stringPos(v cue.Value, s string, off int) token.Pos {
	lit := userPos(v)
	if !lit.IsValid() || lit.Filename() == "" || s == "" {
		return token.NoPos
	}
	src, err := os.ReadFile(lit.Filename())
	if err != nil || lit.Offset() >= len(src) {
		return token.NoPos
	}
	value, offsets, ok := cueString(src[lit.Offset():])
	if !ok || value != s {
		return token.NoPos
	}
	if off >= len(offsets) {
		return lit.Add(offsets[len(offsets)-1] + 1) // the end of the input
	}
	return lit.Add(offsets[max(off, 0)])
}

// cueString decodes the CUE string literal at the start of src and
// returns, for each byte of its value, the offset in src of the source
// byte or escape it comes from.
func cueString(src []byte) (value string, offsets []int, ok bool) {
	hashes := len(src) - len(bytes.TrimLeft(src, "#"))
	esc := "\\" + strings.Repeat("#", hashes)
	closer := `"` + strings.Repeat("#", hashes)
	i := hashes
	var b []byte
	// segment decodes src[i:end], appending to b and offsets.
	segment := func(i, end int) bool {
		for i < end {
			if !bytes.HasPrefix(src[i:end], []byte(esc)) {
				b, offsets = append(b, src[i]), append(offsets, i)
				i++
				continue
			}
			r, n, ok := cueEscape(src[i+len(esc) : end])
			// A surrogate or an out-of-range code point is no character:
			// CUE refuses it too, and UTF-8 has no encoding for it.
			if !ok || !utf8.ValidRune(r) {
				return false
			}
			for range utf8.RuneLen(r) {
				offsets = append(offsets, i)
			}
			b = utf8.AppendRune(b, r)
			i += len(esc) + n
		}
		return true
	}
	switch {
	case bytes.HasPrefix(src[i:], []byte(`"""`+"\n")):
		return cueMultiline(src, i+4, `"""`+closer[1:], segment, &b, &offsets)
	case bytes.HasPrefix(src[i:], []byte(`"`)):
		i++
		end := i
		for ; end < len(src) && !bytes.HasPrefix(src[end:], []byte(closer)); end++ {
			if src[end] == '\n' {
				return "", nil, false
			}
			if bytes.HasPrefix(src[end:], []byte(esc)) {
				end += len(esc) // an escaped quote does not close
			}
		}
		if end >= len(src) || !segment(i, end) {
			return "", nil, false
		}
		return string(b), offsets, true
	}
	return "", nil, false
}

// cueMultiline decodes the lines of a """ string from start: each loses
// the indentation of the closing delimiter's line.
func cueMultiline(src []byte, start int, closer string, segment func(i, end int) bool, b *[]byte, offsets *[]int) (string, []int, bool) {
	type line struct{ start, end int }
	var lines []line
	indent := ""
	for i := start; i < len(src); {
		end := bytes.IndexByte(src[i:], '\n')
		if end < 0 {
			end = len(src) - i
		}
		text := src[i : i+end]
		if trimmed := bytes.TrimLeft(text, " \t"); bytes.HasPrefix(trimmed, []byte(closer)) {
			indent = string(text[:len(text)-len(trimmed)])
			for j, l := range lines {
				if j > 0 {
					*b, *offsets = append(*b, '\n'), append(*offsets, l.start-1)
				}
				if l.start == l.end {
					continue // an empty line needs no indentation
				}
				if !bytes.HasPrefix(src[l.start:l.end], []byte(indent)) {
					return "", nil, false
				}
				if !segment(l.start+len(indent), l.end) {
					return "", nil, false
				}
			}
			return string(*b), *offsets, true
		}
		lines = append(lines, line{i, i + end})
		i += end + 1
	}
	return "", nil, false
}

// cueEscape decodes the escape after a backslash (and a raw string's #s):
// its rune and length. Interpolation is refused.
func cueEscape(src []byte) (rune, int, bool) {
	if len(src) == 0 {
		return 0, 0, false
	}
	if r, ok := map[byte]rune{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v', '\\': '\\', '/': '/', '"': '"', '\'': '\''}[src[0]]; ok {
		return r, 1, true
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[src[0]]
	if digits == 0 || len(src) < 1+digits {
		return 0, 0, false
	}
	n, err := strconv.ParseUint(string(src[1:1+digits]), 16, 32)
	if err != nil {
		return 0, 0, false
	}
	if n > utf8.MaxRune {
		return 0, 0, false // no code point: CUE refuses it too
	}
	return rune(n), 1 + digits, true
}

// template checks the syntax of a label or annotation template.
func (c *monitoringChecker) template(field, alert, text string) {
	if err := alerts.CheckTemplate(alert, text); err != nil {
		c.errAt(field, "invalid template: %v", err)
	}
}

func (c *monitoringChecker) alertmanager(am *Alertmanager) {
	known := func(field, name string) {
		if _, ok := am.Receivers[name]; !ok {
			c.errAt(field, "receiver %q is not defined (receivers: %s)", name, strings.Join(slices.Sorted(maps.Keys(am.Receivers)), ", "))
		}
	}
	known("alertmanager.route.receiver", am.Route.Receiver)
	for i, r := range am.Route.Routes {
		known(fmt.Sprintf("alertmanager.route.routes[%d].receiver", i), r.Receiver)
		if len(r.Matchers) == 0 {
			c.errAt(fmt.Sprintf("alertmanager.route.routes[%d].matchers", i), "a route without matchers takes every alert; set matchers, or make %s the default receiver", r.Receiver)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(am.Receivers)) {
		for i, e := range am.Receivers[name].Email {
			if e.AuthPassword != nil && e.AuthUsername == "" {
				c.errAt(fmt.Sprintf("alertmanager.receivers.%s.email[%d].authPassword", name, i), "authPassword needs authUsername")
			}
		}
	}
}
