{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full resource name prefix: "<release>-warden", or the release name if it already contains the chart name. */}}
{{- define "warden.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object, without the component (see warden.labels). */}}
{{- define "warden.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warden
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels on the controller's objects. */}}
{{- define "warden.labels" -}}
{{ include "warden.baseLabels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* Labels that select the controller pods (never change them between upgrades: Deployment selectors are immutable). */}}
{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "warden.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest] — a digest wins over the tag. Args: dict "repo" "tag" "digest". */}}
{{- define "warden.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repo .digest -}}
{{- else -}}
{{- printf "%s:%s" .repo .tag -}}
{{- end -}}
{{- end -}}

{{- define "warden.image" -}}
{{- include "warden.imageRef" (dict "repo" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) -}}
{{- end -}}

{{/* The broker defaults to the controller's image: one image, two entry points. */}}
{{- define "warden.brokerImage" -}}
{{- $b := .Values.broker.image -}}
{{- include "warden.imageRef" (dict
  "repo" (default .Values.image.repository $b.repository)
  "tag" (default (default .Chart.AppVersion .Values.image.tag) $b.tag)
  "digest" (ternary $b.digest .Values.image.digest (or (not (empty $b.digest)) (not (empty $b.repository)))) ) -}}
{{- end -}}

{{- define "warden.tlsSecretName" -}}
{{- required "certificates.secretName must name the TLS Secret (default warden-webhook-tls)" .Values.certificates.secretName -}}
{{- end -}}

{{- define "warden.webhookConfigurationName" -}}
{{- printf "%s-pod-injector" (include "warden.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "warden.certificateName" -}}
{{- printf "%s-serving" (include "warden.fullname" .) -}}
{{- end -}}

{{- define "warden.authorityUrl" -}}
{{- printf "https://%s.%s.svc:%d" (include "warden.fullname" .) .Release.Namespace (int .Values.service.authorityPort) -}}
{{- end -}}

{{- define "warden.issuer" -}}
{{- default (include "warden.authorityUrl" .) .Values.authority.issuer -}}
{{- end -}}

{{- define "warden.gatewayName" -}}
{{- printf "%s-gateway" (include "warden.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "warden.gatewayServiceAccountName" -}}
{{- default (include "warden.gatewayName" .) .Values.gateway.serviceAccountName -}}
{{- end -}}

{{/* Labels that select the gateway pods. */}}
{{- define "warden.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/* Fails rendering with a readable message when values contradict each other. */}}
{{- define "warden.validate" -}}
{{- $src := .Values.certificates.source -}}
{{- if not (has $src (list "selfManaged" "certManager")) -}}
{{- fail (printf "certificates.source: %q is not supported; use selfManaged or certManager" $src) -}}
{{- end -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) -}}
{{- fail (printf "webhook.failurePolicy: %q is not supported; use Fail or Ignore" .Values.webhook.failurePolicy) -}}
{{- end -}}
{{- $t := int .Values.webhook.timeoutSeconds -}}
{{- if or (lt $t 1) (gt $t 5) -}}
{{- fail (printf "webhook.timeoutSeconds: %d is out of range; use 1..5 (admission latency adds to every agent pod create)" $t) -}}
{{- end -}}
{{- $n := int .Values.audit.batchSize -}}
{{- if or (lt $n 1) (gt $n 500) -}}
{{- fail (printf "audit.batchSize: %d is out of range; use 1..500 (an AuditRecord holds at most 500 entries)" $n) -}}
{{- end -}}
{{- range $k := list "maxRecordsPerAgent" "maxRecordsPerNamespace" -}}
{{- $l := index $.Values.audit $k | default 0 -}}
{{- if or (lt (int $l) 0) (ne (toString (int $l)) (toString $l)) -}}
{{- fail (printf "audit.%s: %v is not a whole number of records; use e.g. 1000 (0 sets no limit)" $k $l) -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.controller.podAntiAffinity (list "soft" "hard" "none")) -}}
{{- fail (printf "controller.podAntiAffinity: %q is not supported; use soft, hard or none" .Values.controller.podAntiAffinity) -}}
{{- end -}}
{{- $gw := .Values.gateway | default dict -}}
{{- if and $gw.enabled (not ($gw.tls | default dict).secretName) -}}
{{- fail "gateway.tls.secretName: name the kubernetes.io/tls Secret the gateway serves agents with (with certificates.source certManager the chart fills it)" -}}
{{- end -}}
{{- if and .Values.gateway.enabled .Values.gateway.publicUrl (not (hasPrefix "https://" .Values.gateway.publicUrl)) -}}
{{- fail (printf "gateway.publicUrl: %q must be an https URL (agents send their token with every request)" .Values.gateway.publicUrl) -}}
{{- end -}}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElection.enabled) -}}
{{- fail "controller.leaderElection.enabled: must be true when controller.replicas > 1, or replicas would reconcile the same objects concurrently" -}}
{{- end -}}
{{- end -}}

{{/*
`warden controller` flags (cli/warden.ts). Options the CLI has always been given are
always rendered; the others only when a value differs from the CLI's built-in default,
so the defaults run on any controller version and a changed value never fails silently.
*/}}
{{- define "warden.controllerArgs" -}}
{{- $v := .Values -}}
- controller
- --namespace=$(POD_NAMESPACE)
- --identity=$(POD_NAME)
- --log-level={{ $v.controller.logLevel }}
{{- if not $v.controller.leaderElection.enabled }}
- --no-leader-election
{{- end }}
{{- with $v.controller.watchNamespace }}
- --watch-namespace={{ . }}
{{- end }}
- --webhook-port={{ $v.controller.ports.webhook }}
- --authority-port={{ $v.controller.ports.authority }}
- --health-port={{ $v.controller.ports.health }}
- --service={{ include "warden.fullname" . }}
- --issuer={{ include "warden.issuer" . }}
- --broker-image={{ include "warden.brokerImage" . }}
{{- if ne $v.broker.image.pullPolicy "IfNotPresent" }}
- --broker-image-pull-policy={{ $v.broker.image.pullPolicy }}
{{- end }}
{{- range $v.broker.trustedImages }}
{{- if . }}
- --trusted-broker-image={{ . }}
{{- end }}
{{- end }}
{{- $r := $v.broker.resources }}
{{- if ne (toString $r.requests.cpu) "20m" }}
- --broker-cpu-request={{ $r.requests.cpu }}
{{- end }}
{{- if ne (toString $r.requests.memory) "48Mi" }}
- --broker-memory-request={{ $r.requests.memory }}
{{- end }}
{{- if ne (toString $r.limits.cpu) "500m" }}
- --broker-cpu-limit={{ $r.limits.cpu }}
{{- end }}
{{- if ne (toString $r.limits.memory) "128Mi" }}
- --broker-memory-limit={{ $r.limits.memory }}
{{- end }}
{{- /* dig: a release upgraded with --reuse-values keeps the old chart's values, without auditSpool. */}}
{{- $spoolMax := int64 (dig "auditSpool" "maxBytes" 16777216 $v.broker) }}
{{- if ne $spoolMax 16777216 }}
- --broker-audit-spool-max-bytes={{ $spoolMax }}
{{- end }}
{{- /* `| default dict`: a release upgraded with --reuse-values keeps the old chart's values, without idpCa. */}}
{{- if ($v.controller.idpCa | default dict).configMap }}
- --idp-ca=/etc/warden/idp-ca/ca.crt
{{- end }}
{{- if ($v.gateway | default dict).enabled }}
- --gateway-service-account={{ .Release.Namespace }}/{{ include "warden.gatewayServiceAccountName" . }}
{{- end }}
- --audit-batch-size={{ $v.audit.batchSize }}
- --audit-flush-seconds={{ $v.audit.flushSeconds }}
- --audit-retention={{ $v.audit.retention }}
{{- with $v.audit.maxRecordsPerAgent }}
- --audit-max-records-per-agent={{ int . }}
{{- end }}
{{- with $v.audit.maxRecordsPerNamespace }}
- --audit-max-records-per-namespace={{ int . }}
{{- end }}
{{- with $v.audit.otlpEndpoint }}
- --audit-otlp-endpoint={{ . }}
{{- end }}
{{- if eq $v.certificates.source "certManager" }}
{{- /* cert-manager owns the certificate and the caBundle: serve the mounted files, patch nothing. */}}
- --tls-cert-dir=/var/run/warden/tls
- --webhook-configuration=
{{- else }}
- --webhook-configuration={{ include "warden.webhookConfigurationName" . }}
{{- if ne (include "warden.tlsSecretName" .) "warden-webhook-tls" }}
- --tls-secret={{ include "warden.tlsSecretName" . }}
{{- end }}
{{- end }}
{{- with $v.controller.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}
