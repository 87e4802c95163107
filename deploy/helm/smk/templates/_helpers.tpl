{{/* Names: <release>-smk unless the release name already says smk; 63 characters at most. */}}
{{- define "smk.fullname" -}}
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

{{- define "smk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Per-role object names. Suffixes are short so the whole name stays under 63 characters. */}}
{{- define "smk.webhook.name" -}}{{ include "smk.fullname" . | trunc 55 | trimSuffix "-" }}-webhook{{- end -}}
{{- define "smk.webhook.tlsSecret" -}}{{ include "smk.fullname" . | trunc 51 | trimSuffix "-" }}-webhook-tls{{- end -}}
{{- define "smk.controller.name" -}}{{ include "smk.fullname" . | trunc 52 | trimSuffix "-" }}-controller{{- end -}}
{{- define "smk.writeThrough.keyName" -}}{{ include "smk.fullname" . | trunc 45 | trimSuffix "-" }}-write-through-key{{- end -}}
{{- define "smk.csi.name" -}}{{ include "smk.fullname" . | trunc 50 | trimSuffix "-" }}-csi-provider{{- end -}}

{{- define "smk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "smk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: smk
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one role: pass (dict "ctx" $ "component" "webhook"). Never change after install. */}}
{{- define "smk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smk.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "smk.componentLabels" -}}
{{ include "smk.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The one image every role runs (and the injected agent, unless webhook.agent.image says otherwise). */}}
{{- define "smk.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* ServiceAccount name of a role: pass (dict "ctx" $ "role" .Values.webhook "default" name). */}}
{{- define "smk.serviceAccountName" -}}
{{- if .role.serviceAccount.create -}}
{{- default .default .role.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .role.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ServiceAccount annotations as YAML (empty when none): the IRSA role ARN as its own value, then the rest. */}}
{{- define "smk.serviceAccountAnnotations" -}}
{{- $annotations := dict -}}
{{- with .serviceAccount.roleArn }}{{ $_ := set $annotations "eks.amazonaws.com/role-arn" . }}{{ end -}}
{{- with .serviceAccount.annotations }}{{ $annotations = merge $annotations . }}{{ end -}}
{{- with $annotations }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* Environment every role shares: log level, AWS region and endpoint. */}}
{{- define "smk.commonEnv" -}}
- name: SMK_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- with .Values.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.endpointUrl }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The escape hatches every role shares, appended after the chart's own entries: pass the role's
values and the list's key, e.g. (dict "role" .Values.webhook "key" "extraEnv" "indent" 12). Nothing is
rendered for an empty list, so the default output stays as it was. */}}
{{- define "smk.extra" -}}
{{- $indent := int .indent }}
{{- with (get .role .key) }}
{{- toYaml . | nindent $indent }}
{{- end }}
{{- end -}}

{{/* A role's PodDisruptionBudget: pass (dict "ctx" $ "component" "webhook" "name" $name "replicas" n
"pdb" .podDisruptionBudget). minAvailable that is an integer not below the replica count would block
every node drain for ever: with one replica the budget becomes maxUnavailable 1 (evictions allowed;
NOTES says so), with more the render fails naming the value. */}}
{{- define "smk.podDisruptionBudget" -}}
{{- $replicas := int .replicas -}}
{{- $min := .pdb.minAvailable -}}
{{- $blocks := and (not (kindIs "string" $min)) (ge (int $min) $replicas) -}}
{{- if and $blocks (gt $replicas 1) -}}
{{- fail (printf "%s.podDisruptionBudget.minAvailable %d with %s.replicas %d blocks every node drain: give fewer, a percentage, or more replicas" .key (int $min) .key $replicas) -}}
{{- end }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "smk.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
spec:
  {{- if $blocks }}
  # One replica: minAvailable {{ $min }} would refuse every eviction, so a drain of its node would
  # never finish. The pod may be evicted; there is no second one to answer meanwhile.
  maxUnavailable: 1
  {{- else }}
  minAvailable: {{ $min }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "smk.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}

{{/* True (non-empty) when a role's budget was relaxed to maxUnavailable 1 (one replica); for NOTES. */}}
{{- define "smk.podDisruptionBudget.relaxed" -}}
{{- $min := .pdb.minAvailable -}}
{{- if and .pdb.enabled (not (kindIs "string" $min)) (ge (int $min) (int .replicas)) (le (int .replicas) 1) }}true{{ end -}}
{{- end -}}

{{/* Namespaces no smk webhook ever sees: the control plane's and smk's own (it must start without itself). */}}
{{- define "smk.webhook.excludedNamespaces" -}}
{{- $excluded := concat .Values.webhook.excludedNamespaces (list .Release.Namespace) | uniq -}}
{{- toJson $excluded -}}
{{- end -}}

{{- define "smk.webhook.selfManagedTls" -}}
{{- if eq .Values.webhook.tls.mode "self" }}true{{ end -}}
{{- end -}}

{{/* What the controller needs in the namespaces it watches. Syncing: its sources, the Secrets it
writes, the ServiceAccounts it acts as (IRSA annotation, TokenRequest) and Events. Rotation: the
mappings, the workloads it rolls (each rollout kind's restart patch), the ConfigMaps workloads name
for restarts, and a re-sync request on SecretSyncs/SecretProviderClasses (patch). */}}
{{- define "smk.controller.rules" }}
  - apiGroups: [smk.dev]
    resources: [secretsyncs]
    verbs: [get, list, watch, patch, update]
  - apiGroups: [smk.dev]
    resources: [secretsyncs/status]
    verbs: [get, patch, update]
  # Owner references with blockOwnerDeletion on the Secrets it creates.
  - apiGroups: [smk.dev]
    resources: [secretsyncs/finalizers]
    verbs: [update]
  - apiGroups: [secrets-store.csi.x-k8s.io]
    resources: [secretproviderclasses]
    verbs: [get, list, watch{{ if .Values.controller.rotation.enabled }}, patch{{ end }}]
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [""]
    resources: [serviceaccounts]
    verbs: [get]
  - apiGroups: [""]
    resources: [serviceaccounts/token]
    verbs: [create]
  - apiGroups: [""]
    resources: [events]
    verbs: [create, patch]
{{- if .Values.controller.rotation.enabled }}
  - apiGroups: [awssecretsoperator.secretoperator]
    resources: [secretsrotationmappings]
    verbs: [get, list, watch]
  - apiGroups: [awssecretsoperator.secretoperator]
    resources: [secretsrotationmappings/status]
    verbs: [get, patch, update]
  # Every rollout kind (src/controller/rotation/kinds.ts, one row each; test/deploy/chart.test.ts
  # compares): watched, read fresh before a rollout, patched to restart.
  - apiGroups: [apps]
    resources: [deployments, statefulsets, daemonsets]
    verbs: [get, list, watch, patch]
  - apiGroups: [batch]
    resources: [cronjobs]
    verbs: [get, list, watch, patch]
  # Argo Rollouts, used only where its CRD is served (restarted through spec.restartAt).
  - apiGroups: [argoproj.io]
    resources: [rollouts]
    verbs: [get, list, watch, patch]
  # ConfigMaps a workload names for restarts (smk.dev/reload-configmaps): watched, never written.
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
{{- end }}
{{- end }}
