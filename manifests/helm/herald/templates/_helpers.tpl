{{/* Labels of every object; the argument is the component (controller or speaker). */}}
{{- define "herald.labels" -}}
app.kubernetes.io/name: herald
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The image reference. */}}
{{- define "herald.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Name of the memberlist key Secret. */}}
{{- define "herald.memberlistSecret" -}}
{{- if and .Values.memberlist.existingSecret .Values.memberlist.key -}}
{{- fail "set memberlist.existingSecret or memberlist.key, not both" -}}
{{- end -}}
{{ .Values.memberlist.existingSecret | default "herald-memberlist" }}
{{- end }}
