{{/* Base name of every object: the release name, or "kwarm" inside it. */}}
{{- define "kwarm.fullname" -}}
{{- if contains "kwarm" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kwarm" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kwarm.labels" -}}
app.kubernetes.io/name: kwarm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kwarm.selectorLabels" -}}
app.kubernetes.io/name: kwarm
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kwarm.controllerName" -}}{{ include "kwarm.fullname" . }}-controller{{- end -}}
{{- define "kwarm.agentName" -}}{{ include "kwarm.fullname" . }}-agent{{- end -}}

{{/* image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "kwarm.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Hardening shared by both containers. */}}
{{- define "kwarm.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The rollout gate's webhook: its configuration, Service, self-managed Secret and cert-manager Secret. */}}
{{- define "kwarm.webhookConfigurationName" -}}{{ include "kwarm.fullname" . }}-rollout-gate{{- end -}}
{{- define "kwarm.webhookServiceName" -}}{{ include "kwarm.fullname" . }}-webhook{{- end -}}
{{- define "kwarm.webhookSecretName" -}}{{ include "kwarm.fullname" . }}-webhook-cert{{- end -}}
{{- define "kwarm.credentialsServiceName" -}}{{ include "kwarm.fullname" . }}-credentials{{- end -}}
{{- define "kwarm.credentialsSecretName" -}}{{ include "kwarm.fullname" . }}-credentials-cert{{- end -}}
{{- define "kwarm.credentialsCaName" -}}{{ include "kwarm.fullname" . }}-credentials-ca{{- end -}}
{{- define "kwarm.webhookCertManagerSecretName" -}}{{ include "kwarm.fullname" . }}-webhook-tls{{- end -}}

{{/* ServiceMonitor/PodMonitor relabelings: node (the pod's node) and component, as in files/prometheus-scrape.yaml. */}}
{{- define "kwarm.scrapeRelabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
  targetLabel: component
{{- end -}}
