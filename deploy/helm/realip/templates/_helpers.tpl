{{/* Name of the release's objects. */}}
{{- define "realip.fullname" -}}
{{- if contains "realip" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-realip" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object; app.kubernetes.io/name: realip is how realip doctor finds the ingress. */}}
{{- define "realip.labels" -}}
app.kubernetes.io/name: realip
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The echo app is not the ingress: its own name. */}}
{{- define "realip.echoLabels" -}}
app.kubernetes.io/name: realip-echo
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: echo
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "realip.selectorLabels" -}}
app.kubernetes.io/name: realip
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "realip.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Who may use a listener: Ingresses (ingress.enabled) and which Gateways (gateway.allowedGateways). */}}
{{- define "realip.listenerScope" -}}
{{- if not .Values.ingress.enabled }}
ingress = false
{{- end }}
{{- with .Values.gateway.allowedGateways }}
gateways = [{{ range $i, $g := . }}{{ if $i }}, {{ end }}{{ $g | quote }}{{ end }}]
{{- end }}
{{- end -}}

{{/* The proxy's configuration (docs/proxy.md). Routes come from Ingresses. */}}
{{- define "realip.config" -}}
[[listener]]
name = "http"
bind = "0.0.0.0:{{ .Values.controller.ports.http }}"
gateway_ports = [{{ .Values.service.port }}]
{{- include "realip.listenerScope" . }}
{{- if .Values.proxyProtocol.enabled }}
proxy_protocol = "required"
proxy_protocol_from = [{{ range $i, $c := .Values.proxyProtocol.from }}{{ if $i }}, {{ end }}{{ $c | quote }}{{ end }}]
header_timeout = "5s"
{{- end }}

[[listener]]
name = "https"
bind = "0.0.0.0:{{ .Values.controller.ports.https }}"
gateway_ports = [{{ .Values.service.httpsPort }}]
{{- include "realip.listenerScope" . }}
tls = { kubernetes = true }
{{- if .Values.proxyProtocol.enabled }}
proxy_protocol = "required"
proxy_protocol_from = [{{ range $i, $c := .Values.proxyProtocol.from }}{{ if $i }}, {{ end }}{{ $c | quote }}{{ end }}]
header_timeout = "5s"
{{- end }}

[client_ip]
{{- $trusted := .Values.config.trustedProxies }}
{{- if .Values.proxyProtocol.enabled }}{{ $trusted = concat .Values.proxyProtocol.from .Values.config.trustedProxies }}{{ end }}
trusted = [{{ range $i, $c := $trusted }}{{ if $i }}, {{ end }}{{ $c | quote }}{{ end }}]
sources = [{{ if .Values.proxyProtocol.enabled }}"proxy-protocol", {{ end }}"xff"]

[forward]
x_forwarded_for = "append"
x_real_ip = true
x_forwarded_proto = true

[log]
format = {{ .Values.config.logFormat | quote }}

[admin]
bind = "0.0.0.0:{{ .Values.controller.ports.admin }}"

[lifecycle]
drain_delay = "{{ .Values.controller.drainDelaySeconds }}s"
drain_timeout = "{{ .Values.controller.drainTimeoutSeconds }}s"
watch_interval = "0s"
{{- with .Values.rateLimit.redis.url }}

[rate_limit_store]
redis = {{ . | quote }}
{{- if $.Values.rateLimit.redis.existingSecret }}
password_env = "REALIP_REDIS_PASSWORD"
{{- end }}
{{- end }}
{{- with .Values.config.extra }}

{{ . }}
{{- end }}
{{- end -}}

{{/* Cloud annotations that make the load balancer send PROXY v2. */}}
{{- define "realip.proxyAnnotations" -}}
{{- if .Values.proxyProtocol.enabled -}}
{{- $c := .Values.proxyProtocol.cloud -}}
{{- if eq $c "aws" }}
service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"
service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: proxy_protocol_v2.enabled=true
{{- else if eq $c "digitalocean" }}
service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: "true"
{{- else if eq $c "hetzner" }}
load-balancer.hetzner.cloud/uses-proxyprotocol: "true"
{{- else if eq $c "linode" }}
service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol: v2
{{- else if eq $c "scaleway" }}
service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2: "true"
{{- else if ne $c "none" }}
{{- fail (printf "proxyProtocol.cloud: %q is not aws, digitalocean, hetzner, linode, scaleway or none" $c) }}
{{- end }}
{{- end -}}
{{- end -}}
