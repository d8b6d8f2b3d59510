{{/* Names, labels and the checks JSON Schema cannot express. */}}
{{- define "smartnat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smartnat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "smartnat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smartnat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "smartnat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "smartnat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smartnat
{{- end -}}

{{- define "smartnat.serviceAccountName" -}}
{{- default (include "smartnat.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "smartnat.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Lease timings: the same rules the agent checks at start (src/plan/lease-settings.ts). */}}
{{- define "smartnat.checkTimings" -}}
{{- $a := .Values.agent -}}
{{- if not (gt (int $a.leaseDurationMs) (int $a.renewDeadlineMs)) -}}
{{- fail (printf "agent.leaseDurationMs (%d) must be greater than agent.renewDeadlineMs (%d)" (int $a.leaseDurationMs) (int $a.renewDeadlineMs)) -}}
{{- end -}}
{{- if lt (int $a.renewDeadlineMs) (mul 2 (int $a.retryPeriodMs)) -}}
{{- fail (printf "agent.renewDeadlineMs (%d) must be at least 2 x agent.retryPeriodMs (%d)" (int $a.renewDeadlineMs) (int $a.retryPeriodMs)) -}}
{{- end -}}
{{- $drainMs := add (int $a.handoffGraceMs) (int $a.leaseDurationMs) -}}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) $drainMs -}}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must be longer than a drain: agent.handoffGraceMs + agent.leaseDurationMs = %d ms" (int .Values.terminationGracePeriodSeconds) $drainMs) -}}
{{- end -}}
{{- $names := dict -}}
{{- range .Values.agent.interfaces -}}
{{- if hasKey $names .name -}}
{{- fail (printf "agent.interfaces: %s is listed twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- end -}}
{{- $pools := dict -}}
{{- range .Values.addressPools -}}
{{- if hasKey $pools .name -}}
{{- fail (printf "addressPools: the name %s is used twice" .name) -}}
{{- end -}}
{{- $_ := set $pools .name true -}}
{{- end -}}
{{- end -}}

{{/* UID 0 (a non-root user gets no ambient capabilities) with every capability dropped but two. */}}
{{- define "smartnat.containerSecurity" -}}
runAsUser: 0
runAsNonRoot: false
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
  add: ["NET_ADMIN", "NET_RAW"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "smartnat.sharedMounts" -}}
- name: state
  mountPath: /run/smartnat
- name: tmp
  mountPath: /tmp
{{- end -}}
