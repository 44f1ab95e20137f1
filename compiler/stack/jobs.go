package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/galley-dev/galley/compiler/jobs"
)

// Job is one batch job, rendered into apps/<name>/ like an app.
type Job struct {
	jobs.Spec
	DependsOn []string     `json:"dependsOn"`
	Secrets   SecretPolicy `json:"secrets"`
	SyncWave  *int         `json:"syncWave,omitempty"`

	value cue.Value
}

// Job returns the job with the given name, or nil.
func (s *Stack) Job(name string) *Job {
	for _, j := range s.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// Value is the job's CUE value, for positions in later errors.
func (j *Job) Value() cue.Value { return j.value }

// Pos returns the position in the user's source of a field below the job
// ("" for the job itself), falling back to the job's own position.
func (j *Job) Pos(field string) token.Pos { return fieldPos(j.value, field) }

func (j *Job) errAt(field, format string, args ...any) *Error {
	p := "stack.jobs." + j.Name
	if field != "" {
		p += "." + field
	}
	return &Error{Pos: j.Pos(field), Path: p, Msg: fmt.Sprintf(format, args...)}
}

// decodeJobs fills s.Jobs from the stack's jobs field, sorted by name.
func decodeJobs(s *Stack, v cue.Value) error {
	it, err := v.LookupPath(cue.ParsePath("jobs")).Fields()
	if err != nil {
		return fromCUE(err).sort()
	}
	for it.Next() {
		jv := it.Value()
		b, err := jv.MarshalJSON()
		if err != nil {
			return fromCUE(err).sort()
		}
		j := &Job{value: jv}
		if err := json.Unmarshal(b, j); err != nil {
			return fmt.Errorf("decoding job %s: %w", it.Selector(), err)
		}
		s.Jobs = append(s.Jobs, j)
	}
	slices.SortFunc(s.Jobs, func(a, b *Job) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// credentialName matches environment variable names that usually hold a
// credential, whose value must not be written in the bundle.
var credentialName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)`)

// commitSHA is a full commit hash, which `git clone --branch` cannot take.
var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// maxCronJobName is the longest CronJob name Kubernetes accepts: the Jobs
// it creates append an 11-character suffix to it.
const maxCronJobName = 52

// galleyLabels are set on every job object by galley; a stack may not
// set them.
var galleyLabels = []string{jobs.LabelName, jobs.LabelPartOf, jobs.LabelManagedBy, jobs.LabelJobKind}

// checkJobs finds what the schema cannot: schedules, names shared with
// apps, references, quantities, labels and credentials in clear.
func (s *Stack) checkJobs() Errors {
	var errs Errors
	for _, j := range s.Jobs {
		errs = append(errs, s.checkJob(j)...)
	}
	return errs
}

func (s *Stack) checkJob(j *Job) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, j.errAt(field, format, args...)) }

	if a := s.App(j.Name); a != nil {
		e := j.errAt("", "job %s has the name of an app: both would be written to apps/%s/; rename one", j.Name, j.Name)
		e.Related = append(e.Related, a.Pos(""))
		errs = append(errs, e)
	}
	for i, dep := range j.DependsOn {
		switch {
		case dep == j.Name:
			add(fmt.Sprintf("dependsOn[%d]", i), "job %s depends on itself", j.Name)
		case !s.isNode(dep):
			e := j.errAt(fmt.Sprintf("dependsOn[%d]", i), "job %s depends on %q, %s", j.Name, dep, s.notANode())
			e.Hint = s.nodeHint(dep)
			errs = append(errs, e)
		}
	}

	if j.Schedule != "" {
		if err := jobs.ParseSchedule(j.Schedule); err != nil {
			add("schedule", "%v", err)
		}
		if len(j.Name) > maxCronJobName {
			add("", "a scheduled job's name is at most %d characters (Kubernetes appends a suffix to name each run); %q has %d", maxCronJobName, j.Name, len(j.Name))
		}
		if j.TimeZone != "" {
			if err := jobs.CheckTimeZone(j.TimeZone); err != nil {
				add("timeZone", "%v", err)
			}
		}
	} else {
		for field, set := range map[string]bool{
			"timeZone":                j.TimeZone != "",
			"startingDeadlineSeconds": j.StartingDeadlineSeconds != nil,
		} {
			if set {
				add(field, "%s applies to a scheduled job only: set schedule, or remove %s", field, field)
			}
		}
		if j.TTLSecondsAfterFinished != nil {
			add("ttlSecondsAfterFinished", "a one-off job must not delete itself: Argo CD or Flux would create it again and run it again; remove ttlSecondsAfterFinished or set a schedule")
		}
	}

	switch j.Kind {
	case jobs.KindDBT:
		if len(j.Command) > 0 {
			add("command", "a dbt job builds its command line from dbt; remove command")
		}
		if len(j.Args) > 0 {
			add("args", "a dbt job builds its command line from dbt; put extra dbt flags in dbt.flags")
		}
		if d := j.DBT; d != nil {
			errs = append(errs, checkDBT(j, d)...)
		}
	default:
		if j.DBT != nil {
			add("dbt", "dbt settings on a job of kind %q: set kind: \"dbt\"", j.Kind)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(j.Env)) {
		field := "env." + cueLabel(name)
		v := j.Env[name]
		switch {
		case v.Sources() != 1:
			add(field, "set one of value, secretKeyRef, configMapKeyRef and fieldRef")
		case v.IsLiteral() && credentialName.MatchString(name) && !j.Secrets.AllowPlaintext:
			add(field, "%s looks like a credential, and a value written here is readable by anyone who can pull the bundle: read it from an existing Secret with {secretKeyRef: {name: ..., key: ...}}, or allow it with `secrets: allowPlaintext: true`", name)
		}
	}
	for i, ef := range j.EnvFrom {
		if (ef.SecretRef == nil) == (ef.ConfigMapRef == nil) {
			add(fmt.Sprintf("envFrom[%d]", i), "set one of secretRef and configMapRef")
		}
	}
	for _, kind := range []string{"requests", "limits"} {
		m := j.Resources.Requests
		if kind == "limits" {
			m = j.Resources.Limits
		}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if _, err := resource.ParseQuantity(string(m[name])); err != nil {
				add("resources."+kind+"."+cueLabel(name), "%q is not a Kubernetes quantity (such as 500m, 2Gi or 1): %v", m[name], err)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Labels)) {
		field := "labels." + cueLabel(k)
		if slices.Contains(galleyLabels, k) {
			add(field, "galley sets label %s on every job object; remove it", k)
			continue
		}
		for _, msg := range validation.IsQualifiedName(k) {
			add(field, "label key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(j.Labels[k]) {
			add(field, "label value %q: %s", j.Labels[k], msg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Annotations)) {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			add("annotations."+cueLabel(k), "annotation key %q: %s", k, msg)
		}
	}
	return errs
}

func checkDBT(j *Job, d *jobs.DBT) Errors {
	var errs Errors
	add := func(field, format string, args ...any) { errs = append(errs, j.errAt(field, format, args...)) }
	if d.FullRefresh && !jobs.FullRefreshCommands[d.Command] {
		add("dbt.fullRefresh", "dbt %s does not take --full-refresh (build, run and seed do)", d.Command)
	}
	if g := d.Git; g != nil {
		if commitSHA.MatchString(g.Revision) {
			add("dbt.git.revision", "a commit cannot be cloned with git clone --branch: name a branch or a tag")
		}
		if d.ProjectDir != "" {
			if clean := path.Clean(d.ProjectDir); path.IsAbs(d.ProjectDir) || clean == ".." || strings.HasPrefix(clean, "../") {
				add("dbt.projectDir", "with git, projectDir is a directory of the repository, relative to its root")
			}
		}
	}
	return errs
}

var cueIdentifier = regexp.MustCompile(`^[A-Za-z$][A-Za-z0-9_$]*$`)

// cueLabel quotes a map key for a CUE path when it is not an identifier.
func cueLabel(key string) string {
	if cueIdentifier.MatchString(key) {
		return key
	}
	return strconv.Quote(key)
}

// A depNode is an app or a job: each has a directory under apps/, an Argo CD
// Application, and dependsOn. Dependencies, cycles and sync waves are
// computed over both.
type depNode struct {
	name      string
	dependsOn []string
	syncWave  *int
	errAt     func(field, format string, args ...any) *Error
}

// nodes returns the apps and the jobs, sorted by name.
func (s *Stack) nodes() []depNode {
	out := make([]depNode, 0, len(s.Apps)+len(s.Jobs))
	for _, a := range s.Apps {
		out = append(out, a.node())
	}
	for _, j := range s.Jobs {
		out = append(out, j.node())
	}
	slices.SortStableFunc(out, func(a, b depNode) int { return strings.Compare(a.name, b.name) })
	return out
}

func (a *App) node() depNode {
	return depNode{name: a.Name, dependsOn: a.DependsOn, syncWave: a.SyncWave, errAt: a.errAt}
}

func (j *Job) node() depNode {
	return depNode{name: j.Name, dependsOn: j.DependsOn, syncWave: j.SyncWave, errAt: j.errAt}
}

// node returns the app, or else the job, with the given name.
func (s *Stack) node(name string) (depNode, bool) {
	if a := s.App(name); a != nil {
		return a.node(), true
	}
	if j := s.Job(name); j != nil {
		return j.node(), true
	}
	return depNode{}, false
}

func (s *Stack) isNode(name string) bool {
	_, ok := s.node(name)
	return ok
}

// notANode ends the message for a dependency on a name the stack does not
// have, listing what it has.
func (s *Stack) notANode() string {
	if len(s.Jobs) == 0 {
		return fmt.Sprintf("which is not an app of this stack (apps: %s)", strings.Join(s.appNames(), ", "))
	}
	return fmt.Sprintf("which is not an app or job of this stack (apps: %s; jobs: %s)", strings.Join(s.appNames(), ", "), strings.Join(s.jobNames(), ", "))
}

// nodeHint suggests the app or job a misspelt dependency meant.
func (s *Stack) nodeHint(name string) string {
	return didYouMean(name, append(s.appNames(), s.jobNames()...))
}

func (s *Stack) jobNames() []string {
	names := make([]string, len(s.Jobs))
	for i, j := range s.Jobs {
		names[i] = j.Name
	}
	return names
}
