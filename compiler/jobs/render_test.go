package jobs

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/internal/golden"
)

func ptr[T any](v T) *T { return &v }

// base is a job with the schema's defaults applied, as Load decodes it.
func base(name string) Spec {
	return Spec{
		Name:                       name,
		Kind:                       KindJob,
		Namespace:                  "batch",
		Image:                      "registry.example.com/tools/exporter:2.1.0",
		ConcurrencyPolicy:          "Forbid",
		SuccessfulJobsHistoryLimit: 3,
		FailedJobsHistoryLimit:     3,
		BackoffLimit:               2,
	}
}

func dbtSpec(name string) Spec {
	s := base(name)
	s.Kind = KindDBT
	s.Image = "ghcr.io/dbt-labs/dbt-postgres:1.9.0"
	s.DBT = &DBT{
		Command:  "build",
		Target:   "prod",
		Profiles: Profiles{Secret: "dbt-profiles", Key: "profiles.yml"},
	}
	return s
}

// TestRender compares each case's YAML with testdata/golden/<name>.yaml.
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func() Spec
	}{
		{"cronjob", func() Spec {
			s := base("export")
			s.Schedule = "0 * * * *"
			s.Command = []string{"/exporter"}
			s.Args = []string{"--since", "1h"}
			s.Env = map[string]EnvValue{
				"TOKEN":     {SecretKeyRef: &KeyRef{Name: "exporter", Key: "token"}},
				"LOG_LEVEL": {Value: ptr("info")},
				"NAMESPACE": {FieldRef: &FieldRef{FieldPath: "metadata.namespace"}},
				"BUCKET":    {ConfigMapKeyRef: &KeyRef{Name: "exporter", Key: "bucket", Optional: ptr(true)}},
			}
			s.EnvFrom = []EnvFrom{{SecretRef: &ObjectRef{Name: "exporter-extra"}}, {ConfigMapRef: &ObjectRef{Name: "defaults"}, Prefix: "DEF_"}}
			s.Resources = Resources{Requests: map[string]Quantity{"cpu": "100m", "memory": "128Mi"}, Limits: map[string]Quantity{"memory": "256Mi"}}
			s.ServiceAccountName = "exporter"
			s.TimeZone = "Europe/Paris"
			s.StartingDeadlineSeconds = ptr[int64](300)
			s.ActiveDeadlineSeconds = ptr[int64](1800)
			s.TTLSecondsAfterFinished = ptr[int32](86400)
			s.Labels = map[string]string{"team": "data", LabelName: "overridden by galley"}
			s.Annotations = map[string]string{"example.com/owner": "data"}
			return s
		}},
		{"oneoff", func() Spec {
			s := base("backfill")
			s.Command = []string{"/exporter", "backfill"}
			s.Suspend = true
			return s
		}},
		{"dbt", func() Spec {
			s := dbtSpec("dbt-nightly")
			s.Schedule = "30 2 * * *"
			s.DBT.Select = []string{"tag:nightly", "path:models/marts"}
			s.DBT.Exclude = []string{"tag:deprecated"}
			s.DBT.Vars = json.RawMessage(`{"z": 1, "a": {"nested": "x>y"}, "big": 12345678901234567890}`)
			s.DBT.Threads = ptr(8)
			s.DBT.FailFast = true
			s.DBT.ProjectDir = "/usr/app/warehouse"
			s.DBT.Flags = []string{"--warn-error"}
			s.Env = map[string]EnvValue{"DBT_PASSWORD": {SecretKeyRef: &KeyRef{Name: "warehouse", Key: "password"}}}
			return s
		}},
		{"dbt-git", func() Spec {
			s := dbtSpec("dbt-seed")
			s.DBT.Command = "seed"
			s.DBT.FullRefresh = true
			s.DBT.Profiles.Key = "prod.yml"
			s.DBT.ProjectDir = "warehouse"
			s.DBT.Git = &Git{Repository: "https://github.com/example/analytics.git", Revision: "v1.2.0", Deps: true}
			s.ImagePullPolicy = "IfNotPresent"
			return s
		}},
		{"dbt-freshness", func() Spec {
			s := dbtSpec("dbt-freshness")
			s.Schedule = "@hourly"
			s.DBT.Command = "source freshness"
			s.DBT.Select = []string{"source:raw"}
			s.DBT.Git = &Git{Repository: "git@github.com:example/analytics.git", Revision: "main", Image: "docker.io/alpine/git:2.45.2"}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Render(tc.spec(), Options{StackName: "platform"})
			if err != nil {
				t.Fatal(err)
			}
			again, err := Render(tc.spec(), Options{StackName: "platform"})
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.Join(docs, []byte("---\n"))
			if !bytes.Equal(got, bytes.Join(again, []byte("---\n"))) {
				t.Fatal("two renders of the same spec differ")
			}
			checkLabels(t, docs)
			golden.Check(t, filepath.Join("testdata", "golden", tc.name+".yaml"), got)
		})
	}
}

// checkLabels: the object, its job template and its pod template carry
// galley's labels, so monitoring can select jobs and their runs.
func checkLabels(t *testing.T, docs [][]byte) {
	t.Helper()
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal(d, &obj); err != nil {
			t.Fatal(err)
		}
		paths := [][]string{{"metadata"}, {"spec", "template", "metadata"}}
		if obj["kind"] == "CronJob" {
			paths = [][]string{{"metadata"}, {"spec", "jobTemplate", "metadata"}, {"spec", "jobTemplate", "spec", "template", "metadata"}}
		}
		for _, p := range paths {
			meta := dig(obj, p...)
			labels, _ := meta["labels"].(map[string]any)
			for _, k := range []string{LabelName, LabelPartOf, LabelManagedBy, LabelJobKind} {
				if labels[k] == nil || labels[k] == "overridden by galley" {
					t.Errorf("%s: label %s is %v", strings.Join(p, "."), k, labels[k])
				}
			}
		}
	}
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m, _ = m[p].(map[string]any)
	}
	return m
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    func() Spec
		command []string
		args    []string
		err     string
	}{
		{
			name:    "job",
			spec:    func() Spec { s := base("j"); s.Command = []string{"run"}; s.Args = []string{"-v"}; return s },
			command: []string{"run"},
			args:    []string{"-v"},
		},
		{
			name:    "image entrypoint",
			spec:    func() Spec { return base("j") },
			command: nil,
			args:    nil,
		},
		{
			name:    "dbt minimal",
			spec:    func() Spec { return dbtSpec("d") },
			command: []string{"dbt"},
			args:    []string{"build", "--target", "prod", "--profiles-dir", "/dbt/profiles"},
		},
		{
			name: "dbt everything",
			spec: func() Spec {
				s := dbtSpec("d")
				s.DBT.Command = "run"
				s.DBT.Select = []string{"a", "b+"}
				s.DBT.Exclude = []string{"c"}
				s.DBT.Selector = "nightly"
				s.DBT.Vars = json.RawMessage(`{"b":2,"a":"x y"}`)
				s.DBT.Threads = ptr(4)
				s.DBT.FullRefresh = true
				s.DBT.FailFast = true
				s.DBT.ProjectDir = "/app"
				s.DBT.Flags = []string{"--no-partial-parse"}
				return s
			},
			command: []string{"dbt"},
			args: []string{"run", "--target", "prod", "--select", "a", "b+", "--exclude", "c", "--selector", "nightly",
				"--vars", `{"a":"x y","b":2}`, "--threads", "4", "--full-refresh", "--fail-fast",
				"--profiles-dir", "/dbt/profiles", "--project-dir", "/app", "--no-partial-parse"},
		},
		{
			name: "dbt two-word command, git project dir cannot escape",
			spec: func() Spec {
				s := dbtSpec("d")
				s.DBT.Command = "source freshness"
				s.DBT.ProjectDir = "../../etc"
				s.DBT.Git = &Git{Repository: "https://example.com/a.git", Revision: "main"}
				return s
			},
			command: []string{"dbt"},
			args:    []string{"source", "freshness", "--target", "prod", "--profiles-dir", "/dbt/profiles", "--project-dir", "/dbt/project/etc"},
		},
		{
			name:    "empty vars are left out",
			spec:    func() Spec { s := dbtSpec("d"); s.DBT.Vars = json.RawMessage(`{}`); return s },
			command: []string{"dbt"},
			args:    []string{"build", "--target", "prod", "--profiles-dir", "/dbt/profiles"},
		},
		{
			name: "full refresh on test",
			spec: func() Spec { s := dbtSpec("d"); s.DBT.Command = "test"; s.DBT.FullRefresh = true; return s },
			err:  "dbt test does not take --full-refresh",
		},
		{
			name: "dbt kind without dbt",
			spec: func() Spec { s := dbtSpec("d"); s.DBT = nil; return s },
			err:  "kind dbt without dbt settings",
		},
		{
			name: "dbt settings on a plain job",
			spec: func() Spec { s := dbtSpec("d"); s.Kind = KindJob; return s },
			err:  `dbt settings on a job of kind "job"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			command, args, err := Command(tc.spec())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Command: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(command, tc.command) || !slices.Equal(args, tc.args) {
				t.Errorf("Command:\n got %q %q\nwant %q %q", command, args, tc.command, tc.args)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	oneoffTTL := base("x")
	oneoffTTL.TTLSecondsAfterFinished = ptr[int32](60)
	for _, tc := range []struct {
		name string
		spec Spec
		opts Options
		want string
	}{
		{"no image", Spec{Name: "x", Namespace: "n"}, Options{StackName: "s"}, "name, namespace and image are required"},
		{"no stack", base("x"), Options{}, "no stack name"},
		{"one-off ttl", oneoffTTL, Options{StackName: "s"}, "would make it run again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Render(tc.spec, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestSpecJSON decodes the JSON Load produces: quantities as strings or
// numbers.
func TestSpecJSON(t *testing.T) {
	var s Spec
	err := json.Unmarshal([]byte(`{
		"name": "j", "kind": "job", "namespace": "n", "image": "i",
		"env": {"A": {"value": "literal"}, "B": {"secretKeyRef": {"name": "s", "key": "k"}}},
		"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"nvidia.com/gpu": 1}}
	}`), &s)
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Env["A"]; !a.IsLiteral() || *a.Value != "literal" || a.Sources() != 1 {
		t.Errorf("env A = %+v, want the literal value", a)
	}
	if b := s.Env["B"]; b.IsLiteral() || b.SecretKeyRef == nil || b.SecretKeyRef.Key != "k" || b.Sources() != 1 {
		t.Errorf("env B = %+v, want a secretKeyRef", b)
	}
	if got := s.Resources.Requests["cpu"]; got != "0.5" {
		t.Errorf("cpu request = %q, want 0.5", got)
	}
	if got := s.Resources.Limits["nvidia.com/gpu"]; got != "1" {
		t.Errorf("gpu limit = %q, want 1", got)
	}
	if err := json.Unmarshal([]byte(`{"resources": {"requests": {"cpu": true}}}`), &s); err == nil {
		t.Error("a boolean quantity decoded without error")
	}
}
