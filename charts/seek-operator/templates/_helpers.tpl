{{/* Common labels. */}}
{{- define "seek.labels" -}}
app.kubernetes.io/name: seek-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels of a component. */}}
{{- define "seek.selector" -}}
app.kubernetes.io/name: seek-operator
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image of a component: <registry>/<repositoryPrefix><component>:<tag>. */}}
{{- define "seek.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- if eq $tag "latest" }}{{ fail "image.tag must not be latest: imported images are found only under their exact tag" }}{{ end -}}
{{ printf "%s/%s%s:%s" .root.Values.image.registry .root.Values.image.repositoryPrefix .component $tag }}
{{- end }}

{{/* Flags shared by the manager and the frontend: the callback policy. */}}
{{- define "seek.callbackArgs" -}}
{{- with .Values.callbacks.allowedCIDRs }}
- --callback-allowed-cidrs={{ join "," . }}
{{- end }}
{{- with .Values.callbacks.allowedHosts }}
- --callback-allowed-hosts={{ join "," . }}
{{- end }}
{{- if .Values.callbacks.anyPort }}
- --callback-any-port
{{- end }}
{{- end }}

{{/* The restricted pod and container security contexts. */}}
{{- define "seek.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "seek.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
