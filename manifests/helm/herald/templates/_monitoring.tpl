{{/* How the monitors authenticate to /metrics (see metrics.scraper). */}}
{{- define "herald.scrapeAuth" -}}
{{- if .Values.metrics.scraper.create -}}
authorization:
  type: Bearer
  credentials:
    name: herald-metrics-scraper-token
    key: token
{{- else -}}
bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- end }}
{{- end }}

{{/* The node label the alerts and the dashboard group the speakers by. */}}
{{- define "herald.scrapeRelabelings" -}}
relabelings:
  - sourceLabels: [__meta_kubernetes_pod_node_name]
    targetLabel: node
{{- end }}
