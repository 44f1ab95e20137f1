{{- define "airflow.env" -}}
- name: AIRFLOW__CORE__EXECUTOR
  value: {{ .Values.executor | quote }}
- name: AIRFLOW__CORE__LOAD_EXAMPLES
  value: "False"
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
- name: AIRFLOW__WEBSERVER__SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: AIRFLOW__WEBSERVER__SECRET_KEY
{{- end }}
{{- define "airflow.gitSync" -}}
{{- if .Values.dags.gitSync.enabled }}
- name: git-sync
  image: {{ .Values.dags.gitSync.image }}
  args:
    - --repo={{ .Values.dags.gitSync.repo }}
    - --ref={{ .Values.dags.gitSync.branch }}
    - --root=/dags
    - --period=60s
  volumeMounts:
    - name: dags
      mountPath: /dags
{{- end }}
{{- end }}
