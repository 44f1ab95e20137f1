{{- define "library.name" -}}{{ .Chart.Name }}{{- end }}
