// Package stackgen writes synthetic galley stacks of any number of apps,
// for the scaling benchmarks: each app has its own small local chart (a
// Deployment, Service, ConfigMap and ServiceAccount behind the usual
// _helpers.tpl), values, labels, a dependency on its predecessor in groups
// of ten, and every fifth app a Kustomize patch. The output depends only on
// the options, so two runs give byte-identical stacks and bundles.
package stackgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options shape a stack. The zero value of a field means its default.
type Options struct {
	// Apps is how many apps (and charts) the stack has; at least 1.
	Apps int
	// Name is the stack name (default "synthetic").
	Name string
	// Version is the stack version (default "0.1.0").
	Version string
}

// ErrExists is returned by Write when the output directory exists.
var ErrExists = errors.New("output directory exists")

// Write creates the stack directory dir: stack.cue and charts/app-NNN/.
// It is written beside dir and renamed into place, so a failure leaves
// nothing behind; dir must not exist yet.
func Write(dir string, o Options) error {
	if o.Apps < 1 {
		return fmt.Errorf("generating stack: %d apps: at least 1 is needed", o.Apps)
	}
	if o.Name == "" {
		o.Name = "synthetic"
	}
	if o.Version == "" {
		o.Version = "0.1.0"
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("generating stack in %s: %w", dir, ErrExists)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("generating stack: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".stackgen-*")
	if err != nil {
		return fmt.Errorf("generating stack: %w", err)
	}
	if err := writeAll(tmp, o); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("generating stack in %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("generating stack: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("generating stack: %w", err)
	}
	return nil
}

// Files returns the stack's files by slash-separated relative path.
func Files(o Options) map[string]string {
	files := map[string]string{"stack.cue": stackCUE(o)}
	for i := range o.Apps {
		name := AppName(i)
		for f, data := range chartFiles(name, i) {
			files["charts/"+name+"/"+f] = data
		}
	}
	return files
}

func writeAll(dir string, o Options) error {
	for name, data := range Files(o) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// AppName is the name of the i-th app (from 0).
func AppName(i int) string { return fmt.Sprintf("app-%03d", i) }

// namespaces spreads the apps over a few namespaces, as a platform does.
var namespaces = []string{"ingest", "storage", "compute", "serving", "observability"}

func stackCUE(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// A synthetic stack of %d apps written by bench/genstack; see bench/stackgen.\npackage synthetic\n\n", o.Apps)
	fmt.Fprintf(&b, "stack: {\n\tname:    %q\n\tversion: %q\n", o.Name, o.Version)
	b.WriteString("\tkubernetes: version: \"1.37.0\"\n\n\tapps: {\n")
	for i := range o.Apps {
		name := AppName(i)
		fmt.Fprintf(&b, "\t\t%q: {\n", name)
		fmt.Fprintf(&b, "\t\t\tnamespace: %q\n", namespaces[i%len(namespaces)])
		fmt.Fprintf(&b, "\t\t\tchart: path: \"charts/%s\"\n", name)
		fmt.Fprintf(&b, "\t\t\tvalues: {replicaCount: %d, image: tag: \"1.%d.0\", config: {LOG_LEVEL: \"info\", SHARD: \"%d\"}}\n", 1+i%3, i, i)
		fmt.Fprintf(&b, "\t\t\tlabels: \"platform.example.com/team\": %q\n", namespaces[i%len(namespaces)])
		if i%10 != 0 {
			fmt.Fprintf(&b, "\t\t\tdependsOn: [%q]\n", AppName(i-1))
		}
		if i%5 == 0 {
			b.WriteString("\t\t\tpatches: [{\n\t\t\t\ttarget: kind: \"Deployment\"\n")
			b.WriteString("\t\t\t\tpatch: [{op: \"add\", path: \"/spec/revisionHistoryLimit\", value: 3}]\n\t\t\t}]\n")
		}
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t}\n\n\tdelivery: argocd: repository: \"oci://registry.example.com/platform/")
	b.WriteString(o.Name)
	b.WriteString("\"\n}\n")
	return b.String()
}

func chartFiles(name string, i int) map[string]string {
	return map[string]string{
		"Chart.yaml":                     fmt.Sprintf("apiVersion: v2\nname: %s\ndescription: A small synthetic service for galley's scaling benchmarks.\ntype: application\nversion: 0.%d.0\nappVersion: \"1.%d.0\"\n", name, i, i),
		"values.yaml":                    chartValues,
		"templates/_helpers.tpl":         chartHelpers,
		"templates/deployment.yaml":      chartDeployment,
		"templates/service.yaml":         chartService,
		"templates/configmap.yaml":       chartConfigMap,
		"templates/serviceaccount.yaml":  chartServiceAccount,
		"templates/tests/test-conn.yaml": chartTest,
	}
}

const chartValues = `replicaCount: 1
image:
  repository: registry.example.com/platform/service
  tag: ""
  pullPolicy: IfNotPresent
serviceAccount:
  create: true
  annotations: {}
service:
  type: ClusterIP
  port: 8080
config: {}
resources:
  requests:
    cpu: 100m
    memory: 128Mi
  limits:
    memory: 256Mi
podAnnotations: {}
nodeSelector: {}
tolerations: []
`

const chartHelpers = `{{- define "svc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "svc.fullname" -}}
{{- if contains (include "svc.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "svc.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "svc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "svc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "svc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
`

const chartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "svc.fullname" . }}
  labels:
    {{- include "svc.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "svc.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "svc.selectorLabels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include "svc.fullname" . }}
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ .Values.service.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "svc.fullname" . }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          readinessProbe:
            httpGet:
              path: /ready
              port: http
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
`

const chartService = `apiVersion: v1
kind: Service
metadata:
  name: {{ include "svc.fullname" . }}
  labels:
    {{- include "svc.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      name: http
  selector:
    {{- include "svc.selectorLabels" . | nindent 4 }}
`

const chartConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "svc.fullname" . }}
  labels:
    {{- include "svc.labels" . | nindent 4 }}
data:
  {{- range $k, $v := .Values.config }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
`

const chartServiceAccount = `{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "svc.fullname" . }}
  labels:
    {{- include "svc.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
`

// chartTest is a Helm test hook, which galley drops by default, as real
// charts ship them.
const chartTest = `apiVersion: v1
kind: Pod
metadata:
  name: "{{ include "svc.fullname" . }}-test-connection"
  labels:
    {{- include "svc.labels" . | nindent 4 }}
  annotations:
    "helm.sh/hook": test
spec:
  containers:
    - name: wget
      image: busybox:1.37
      command: ['wget']
      args: ['{{ include "svc.fullname" . }}:{{ .Values.service.port }}']
  restartPolicy: Never
`
