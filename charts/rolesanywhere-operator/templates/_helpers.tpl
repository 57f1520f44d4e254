{{- define "rao.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rao.labels" -}}
app.kubernetes.io/name: rolesanywhere-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rao.selectorLabels" -}}
app.kubernetes.io/name: rolesanywhere-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rao.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "rao.sidecarImage" -}}
{{- $repository := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{- define "rao.servingSecret" -}}
{{- printf "%s-webhook-tls" (include "rao.name" .) -}}
{{- end -}}

{{- define "rao.issuerName" -}}
{{- printf "%s-webhook" (include "rao.name" .) -}}
{{- end -}}
