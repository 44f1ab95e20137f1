// Package jobs renders a stack's batch jobs as Kubernetes objects: a
// CronJob when the job has a schedule, a one-off Job when not. Kind "dbt"
// builds dbt's command line, mounts profiles.yml from an existing Secret
// and can clone the project from git first.
//
// Choices:
//   - Defaults favour a data pipeline: runs never overlap
//     (concurrencyPolicy Forbid), a failed pod is not restarted in place
//     (restartPolicy Never) but retried twice as a new pod (backoffLimit 2),
//     and three successful and three failed Jobs are kept for their logs.
//   - Every object, the Jobs a CronJob creates and their pods carry
//     app.kubernetes.io/name (the job), part-of (the stack), managed-by
//     (galley) and LabelJobKind, so alert rules on kube-state-metrics can
//     find a stack's dbt runs.
//   - A one-off Job is immutable once created. It is annotated so that
//     Argo CD and Flux replace it, running it again, when the stack
//     changes it, rather than fail to apply.
//   - Environment variables are sorted by name, so the output depends only
//     on the stack; a value may still refer to another with $(NAME) when
//     NAME sorts first.
package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Kinds of job.
const (
	KindJob = "job"
	KindDBT = "dbt"
)

// Labels galley puts on every job object and pod.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelJobKind is "job" or "dbt"; monitoring selects dbt runs by it.
	LabelJobKind = "galley.dev/job-kind"
	ManagedBy    = "galley"
)

// Where a dbt job finds its files.
const (
	ProfilesDir = "/dbt/profiles"
	// ProjectDir is where a project cloned from git goes.
	ProjectDir = "/dbt/project"
)

// Spec is one job as a stack declares it; its JSON form is the schema's
// #Job, every default applied.
type Spec struct {
	Name            string   `json:"name"`
	Kind            string   `json:"kind"`
	Namespace       string   `json:"namespace"`
	Image           string   `json:"image"`
	ImagePullPolicy string   `json:"imagePullPolicy,omitempty"`
	Command         []string `json:"command"`
	Args            []string `json:"args"`
	WorkingDir      string   `json:"workingDir,omitempty"`

	// Schedule is a cron expression; "" makes a one-off Job.
	Schedule                   string `json:"schedule,omitempty"`
	TimeZone                   string `json:"timeZone,omitempty"`
	Suspend                    bool   `json:"suspend"`
	ConcurrencyPolicy          string `json:"concurrencyPolicy"`
	SuccessfulJobsHistoryLimit int32  `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     int32  `json:"failedJobsHistoryLimit"`
	StartingDeadlineSeconds    *int64 `json:"startingDeadlineSeconds,omitempty"`
	BackoffLimit               int32  `json:"backoffLimit"`
	ActiveDeadlineSeconds      *int64 `json:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished    *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	Env                map[string]EnvValue `json:"env"`
	EnvFrom            []EnvFrom           `json:"envFrom"`
	Resources          Resources           `json:"resources"`
	ServiceAccountName string              `json:"serviceAccountName,omitempty"`
	Labels             map[string]string   `json:"labels"`
	Annotations        map[string]string   `json:"annotations"`

	DBT *DBT `json:"dbt,omitempty"`
}

// EnvValue is where an environment variable comes from: one of a value
// written in the stack or a reference.
type EnvValue struct {
	Value           *string   `json:"value,omitempty"`
	SecretKeyRef    *KeyRef   `json:"secretKeyRef,omitempty"`
	ConfigMapKeyRef *KeyRef   `json:"configMapKeyRef,omitempty"`
	FieldRef        *FieldRef `json:"fieldRef,omitempty"`
}

// IsLiteral says whether the value is written in the stack.
func (v EnvValue) IsLiteral() bool { return v.Value != nil }

// Sources counts the fields set; a valid EnvValue has exactly one.
func (v EnvValue) Sources() int {
	n := 0
	for _, set := range []bool{v.Value != nil, v.SecretKeyRef != nil, v.ConfigMapKeyRef != nil, v.FieldRef != nil} {
		if set {
			n++
		}
	}
	return n
}

// KeyRef is a key of an existing Secret or ConfigMap.
type KeyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// FieldRef reads a field of the pod.
type FieldRef struct {
	FieldPath string `json:"fieldPath"`
}

// EnvFrom imports every key of an existing Secret or ConfigMap.
type EnvFrom struct {
	SecretRef    *ObjectRef `json:"secretRef,omitempty"`
	ConfigMapRef *ObjectRef `json:"configMapRef,omitempty"`
	Prefix       string     `json:"prefix,omitempty"`
}

// ObjectRef names an existing Secret or ConfigMap.
type ObjectRef struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// Resources are the container's requests and limits.
type Resources struct {
	Requests map[string]Quantity `json:"requests,omitempty"`
	Limits   map[string]Quantity `json:"limits,omitempty"`
}

// Quantity is a resource quantity as written: "500m", "2Gi", or a number,
// kept as its JSON text.
type Quantity string

// UnmarshalJSON takes a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("quantity %s: want a string or a number", b)
	}
	*q = Quantity(n.String())
	return nil
}

// DBT is how a dbt job runs dbt.
type DBT struct {
	// Command is the dbt subcommand, possibly two words ("source
	// freshness").
	Command  string   `json:"command"`
	Target   string   `json:"target"`
	Select   []string `json:"select"`
	Exclude  []string `json:"exclude"`
	Selector string   `json:"selector,omitempty"`
	// Vars is a JSON object, passed as --vars with its keys sorted.
	Vars        json.RawMessage `json:"vars,omitempty"`
	Threads     *int            `json:"threads,omitempty"`
	FullRefresh bool            `json:"fullRefresh"`
	FailFast    bool            `json:"failFast"`
	Flags       []string        `json:"flags"`
	Profiles    Profiles        `json:"profiles"`
	ProjectDir  string          `json:"projectDir,omitempty"`
	Git         *Git            `json:"git,omitempty"`
}

// Profiles is the existing Secret that holds profiles.yml.
type Profiles struct {
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// Git is where a dbt project is cloned from.
type Git struct {
	Repository string `json:"repository"`
	// Revision is a branch or a tag.
	Revision string `json:"revision"`
	Image    string `json:"image,omitempty"`
	Deps     bool   `json:"deps"`
}

// FullRefreshCommands are the dbt commands that take --full-refresh.
var FullRefreshCommands = map[string]bool{"build": true, "run": true, "seed": true}

// varsJSON renders vars canonically: sorted keys, numbers as written.
func varsJSON(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("dbt vars: %w", err)
	}
	if len(v) == 0 {
		return "", nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a selector such as "a>b" stays readable
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("dbt vars: %w", err)
	}
	return string(bytes.TrimSpace(b.Bytes())), nil
}
