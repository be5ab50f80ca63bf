{{/*
Names. Objects are named <fullname>-<component>; fullname is the release name, or "<release>-ferry" when the
release name does not contain "ferry" (helm install ferry … gives ferry-controller, ferry-ztunnel).
*/}}
{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.controller.name" -}}{{ include "ferry.fullname" . }}-controller{{- end -}}
{{- define "ferry.ztunnel.name" -}}{{ include "ferry.fullname" . }}-ztunnel{{- end -}}

{{/* The controller Service's in-cluster DNS name: the address ztunnels and waypoints dial. */}}
{{- define "ferry.controller.host" -}}
{{ include "ferry.controller.name" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "ferry.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "ferry.labels" -}}
app.kubernetes.io/name: ferry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component (pass a dict: root, component). */}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: ferry
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The projected token the CA authenticates (TokenReview with this audience); shared by ztunnel and waypoints. */}}
{{- define "ferry.caTokenVolume" -}}
- name: ca-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ .Values.ca.tokenAudience | quote }}
          expirationSeconds: {{ .Values.ca.tokenExpirationSeconds }}
          path: token
{{- end -}}

{{/* Where the CA token and the trust bundle are mounted in ztunnel and waypoint containers. */}}
{{- define "ferry.caTokenPath" -}}/var/run/secrets/ferry/ca-token/token{{- end -}}
{{- define "ferry.caRootPath" -}}/var/run/secrets/ferry/ca-root/root-cert.pem{{- end -}}

{{/* Security context of the unprivileged processes (controller, waypoint). */}}
{{- define "ferry.restrictedSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1337
runAsGroup: 1337
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
