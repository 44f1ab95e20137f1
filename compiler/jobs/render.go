package jobs

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Options say what the jobs belong to.
type Options struct {
	// StackName is the app.kubernetes.io/part-of label.
	StackName string
}

// Annotations that make Argo CD and Flux recreate a changed one-off Job,
// whose pod template is immutable.
const (
	argoSyncOptions = "argocd.argoproj.io/sync-options"
	fluxForce       = "kustomize.toolkit.fluxcd.io/force"
)

// Render returns the job's Kubernetes objects as YAML documents, one
// object each: a CronJob, or a Job when the spec has no schedule. The same
// spec always gives the same bytes.
func Render(s Spec, o Options) ([][]byte, error) {
	if s.Name == "" || s.Namespace == "" || s.Image == "" {
		return nil, fmt.Errorf("job %q: name, namespace and image are required", s.Name)
	}
	if o.StackName == "" {
		return nil, errors.New("rendering jobs: no stack name")
	}
	labels := map[string]string{}
	maps.Copy(labels, s.Labels)
	maps.Copy(labels, map[string]string{
		LabelName:      s.Name,
		LabelPartOf:    o.StackName,
		LabelManagedBy: ManagedBy,
		LabelJobKind:   kindOf(s),
	})
	annotations := map[string]string{}
	maps.Copy(annotations, s.Annotations)

	pod, err := podSpec(s)
	if err != nil {
		return nil, err
	}
	jobSpec := jobSpec{
		BackoffLimit:          s.BackoffLimit,
		ActiveDeadlineSeconds: s.ActiveDeadlineSeconds,
		Template: podTemplate{
			Metadata: objectMeta{Labels: labels, Annotations: nonEmpty(annotations)},
			Spec:     pod,
		},
	}

	var obj any
	if s.Schedule == "" {
		if s.TTLSecondsAfterFinished != nil {
			return nil, fmt.Errorf("job %s: ttlSecondsAfterFinished on a one-off Job would make it run again once deleted", s.Name)
		}
		jobAnnotations := map[string]string{
			argoSyncOptions: "Force=true,Replace=true",
			fluxForce:       "enabled",
		}
		maps.Copy(jobAnnotations, annotations)
		jobSpec.Suspend = s.Suspend
		obj = job{
			APIVersion: "batch/v1",
			Kind:       "Job",
			Metadata:   objectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels, Annotations: jobAnnotations},
			Spec:       jobSpec,
		}
	} else {
		jobSpec.TTLSecondsAfterFinished = s.TTLSecondsAfterFinished
		obj = cronJob{
			APIVersion: "batch/v1",
			Kind:       "CronJob",
			Metadata:   objectMeta{Name: s.Name, Namespace: s.Namespace, Labels: labels, Annotations: nonEmpty(annotations)},
			Spec: cronJobSpec{
				Schedule:                   s.Schedule,
				TimeZone:                   s.TimeZone,
				ConcurrencyPolicy:          orDefault(s.ConcurrencyPolicy, "Forbid"),
				Suspend:                    s.Suspend,
				StartingDeadlineSeconds:    s.StartingDeadlineSeconds,
				SuccessfulJobsHistoryLimit: s.SuccessfulJobsHistoryLimit,
				FailedJobsHistoryLimit:     s.FailedJobsHistoryLimit,
				JobTemplate: jobTemplate{
					Metadata: objectMeta{Labels: labels, Annotations: nonEmpty(annotations)},
					Spec:     jobSpec,
				},
			},
		}
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding job %s: %w", s.Name, err)
	}
	return [][]byte{b}, nil
}

// Command returns the main container's command and arguments: the spec's
// own for kind "job", dbt's command line for kind "dbt".
func Command(s Spec) (command, args []string, err error) {
	if kindOf(s) != KindDBT {
		if s.DBT != nil {
			return nil, nil, fmt.Errorf("job %s: dbt settings on a job of kind %q", s.Name, s.Kind)
		}
		return s.Command, s.Args, nil
	}
	d := s.DBT
	if d == nil {
		return nil, nil, fmt.Errorf("job %s: kind dbt without dbt settings", s.Name)
	}
	if d.Target == "" {
		return nil, nil, fmt.Errorf("job %s: dbt target is empty", s.Name)
	}
	cmd := strings.Fields(orDefault(d.Command, "build"))
	args = append(args, cmd...)
	args = append(args, "--target", d.Target)
	if len(d.Select) > 0 {
		args = append(append(args, "--select"), d.Select...)
	}
	if len(d.Exclude) > 0 {
		args = append(append(args, "--exclude"), d.Exclude...)
	}
	if d.Selector != "" {
		args = append(args, "--selector", d.Selector)
	}
	vars, err := varsJSON(d.Vars)
	if err != nil {
		return nil, nil, fmt.Errorf("job %s: %w", s.Name, err)
	}
	if vars != "" {
		args = append(args, "--vars", vars)
	}
	if d.Threads != nil {
		args = append(args, "--threads", strconv.Itoa(*d.Threads))
	}
	if d.FullRefresh {
		if !FullRefreshCommands[orDefault(d.Command, "build")] {
			return nil, nil, fmt.Errorf("job %s: dbt %s does not take --full-refresh", s.Name, d.Command)
		}
		args = append(args, "--full-refresh")
	}
	if d.FailFast {
		args = append(args, "--fail-fast")
	}
	args = append(args, "--profiles-dir", ProfilesDir)
	if dir := projectDir(d); dir != "" {
		args = append(args, "--project-dir", dir)
	}
	args = append(args, d.Flags...)
	return []string{"dbt"}, args, nil
}

// projectDir is the --project-dir of a dbt job, "" for dbt's default (the
// working directory).
func projectDir(d *DBT) string {
	if d.Git == nil {
		return d.ProjectDir
	}
	if d.ProjectDir == "" {
		return ProjectDir
	}
	return path.Join(ProjectDir, path.Clean("/"+d.ProjectDir))
}

func podSpec(s Spec) (podSpecT, error) {
	command, args, err := Command(s)
	if err != nil {
		return podSpecT{}, err
	}
	main := container{
		Name:            s.Name,
		Image:           s.Image,
		ImagePullPolicy: s.ImagePullPolicy,
		Command:         command,
		Args:            args,
		WorkingDir:      s.WorkingDir,
		Env:             envVars(s.Env),
		EnvFrom:         s.EnvFrom,
		Resources:       resources(s.Resources),
	}
	pod := podSpecT{
		RestartPolicy:      "Never",
		ServiceAccountName: s.ServiceAccountName,
	}
	if d := s.DBT; d != nil && kindOf(s) == KindDBT {
		pod.Volumes = append(pod.Volumes, volume{
			Name: "dbt-profiles",
			Secret: &secretVolume{
				SecretName: d.Profiles.Secret,
				Items:      []keyToPath{{Key: orDefault(d.Profiles.Key, "profiles.yml"), Path: "profiles.yml"}},
			},
		})
		profiles := volumeMount{Name: "dbt-profiles", MountPath: ProfilesDir, ReadOnly: true}
		main.VolumeMounts = append(main.VolumeMounts, profiles)
		if g := d.Git; g != nil {
			pod.Volumes = append(pod.Volumes, volume{Name: "dbt-project", EmptyDir: &struct{}{}})
			project := volumeMount{Name: "dbt-project", MountPath: ProjectDir}
			main.VolumeMounts = append(main.VolumeMounts, project)
			pod.InitContainers = append(pod.InitContainers, container{
				Name:            "git-clone",
				Image:           orDefault(g.Image, s.Image),
				ImagePullPolicy: s.ImagePullPolicy,
				Command:         []string{"git", "clone", "--depth", "1", "--branch", orDefault(g.Revision, "main"), "--", g.Repository, ProjectDir},
				VolumeMounts:    []volumeMount{project},
			})
			if g.Deps {
				pod.InitContainers = append(pod.InitContainers, container{
					Name:            "dbt-deps",
					Image:           s.Image,
					ImagePullPolicy: s.ImagePullPolicy,
					Command:         []string{"dbt"},
					Args:            []string{"deps", "--profiles-dir", ProfilesDir, "--project-dir", projectDir(d)},
					Env:             main.Env,
					EnvFrom:         main.EnvFrom,
					VolumeMounts:    []volumeMount{profiles, project},
				})
			}
		}
	}
	pod.Containers = []container{main}
	return pod, nil
}

func kindOf(s Spec) string { return orDefault(s.Kind, KindJob) }

func envVars(env map[string]EnvValue) []envVar {
	var out []envVar
	for _, name := range slices.Sorted(maps.Keys(env)) {
		v := env[name]
		e := envVar{Name: name}
		if v.IsLiteral() {
			e.Value = v.Value
		} else {
			e.ValueFrom = &envVarSource{SecretKeyRef: v.SecretKeyRef, ConfigMapKeyRef: v.ConfigMapKeyRef, FieldRef: v.FieldRef}
		}
		out = append(out, e)
	}
	return out
}

func resources(r Resources) *resourceRequirements {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return nil
	}
	return &resourceRequirements{Requests: r.Requests, Limits: r.Limits}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// The subset of batch/v1 and core/v1 galley writes; map keys are sorted
// when marshalled, so the YAML is stable.
type objectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type cronJob struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   objectMeta  `json:"metadata"`
	Spec       cronJobSpec `json:"spec"`
}

type cronJobSpec struct {
	Schedule                   string      `json:"schedule"`
	TimeZone                   string      `json:"timeZone,omitempty"`
	ConcurrencyPolicy          string      `json:"concurrencyPolicy"`
	Suspend                    bool        `json:"suspend"`
	StartingDeadlineSeconds    *int64      `json:"startingDeadlineSeconds,omitempty"`
	SuccessfulJobsHistoryLimit int32       `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     int32       `json:"failedJobsHistoryLimit"`
	JobTemplate                jobTemplate `json:"jobTemplate"`
}

type jobTemplate struct {
	Metadata objectMeta `json:"metadata"`
	Spec     jobSpec    `json:"spec"`
}

type job struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       jobSpec    `json:"spec"`
}

type jobSpec struct {
	Suspend                 bool        `json:"suspend,omitempty"`
	BackoffLimit            int32       `json:"backoffLimit"`
	ActiveDeadlineSeconds   *int64      `json:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished *int32      `json:"ttlSecondsAfterFinished,omitempty"`
	Template                podTemplate `json:"template"`
}

type podTemplate struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpecT   `json:"spec"`
}

type podSpecT struct {
	RestartPolicy      string      `json:"restartPolicy"`
	ServiceAccountName string      `json:"serviceAccountName,omitempty"`
	InitContainers     []container `json:"initContainers,omitempty"`
	Containers         []container `json:"containers"`
	Volumes            []volume    `json:"volumes,omitempty"`
}

type container struct {
	Name            string                `json:"name"`
	Image           string                `json:"image"`
	ImagePullPolicy string                `json:"imagePullPolicy,omitempty"`
	Command         []string              `json:"command,omitempty"`
	Args            []string              `json:"args,omitempty"`
	WorkingDir      string                `json:"workingDir,omitempty"`
	Env             []envVar              `json:"env,omitempty"`
	EnvFrom         []EnvFrom             `json:"envFrom,omitempty"`
	Resources       *resourceRequirements `json:"resources,omitempty"`
	VolumeMounts    []volumeMount         `json:"volumeMounts,omitempty"`
}

type envVar struct {
	Name      string        `json:"name"`
	Value     *string       `json:"value,omitempty"`
	ValueFrom *envVarSource `json:"valueFrom,omitempty"`
}

type envVarSource struct {
	SecretKeyRef    *KeyRef   `json:"secretKeyRef,omitempty"`
	ConfigMapKeyRef *KeyRef   `json:"configMapKeyRef,omitempty"`
	FieldRef        *FieldRef `json:"fieldRef,omitempty"`
}

type resourceRequirements struct {
	Requests map[string]Quantity `json:"requests,omitempty"`
	Limits   map[string]Quantity `json:"limits,omitempty"`
}

type volume struct {
	Name     string        `json:"name"`
	Secret   *secretVolume `json:"secret,omitempty"`
	EmptyDir *struct{}     `json:"emptyDir,omitempty"`
}

type secretVolume struct {
	SecretName string      `json:"secretName"`
	Items      []keyToPath `json:"items,omitempty"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}
